/**
 * The Cell wire protocol: frame kinds, their encoding, and a streaming frame reader.
 * `docs/protocol.md` is the specification; `tests/vectors/` holds bytes every implementation
 * must agree on.
 *
 * A frame is a 4-byte big-endian body length followed by the body, one MessagePack array whose
 * first element is the frame kind.
 *
 * @module
 */
import { decode } from "./codec.ts";
import {
  cursor,
  decodeTupleRange,
  encodeTuple,
  encodeTupleInto,
  encodeWith,
  readShortStringAt,
  readValueAt,
  writeStringAt,
  writeUint32At,
  writeValueAt,
} from "./msgpack.ts";
import { CellError } from "./errors.ts";
import { NO_MATCH, type PayloadDecoder, type PayloadEncoder } from "./_payload_codec.ts";

export type { PayloadDecoder, PayloadEncoder };

/** Where a receiver finds the compiled decoders of the payloads it expects. */
export interface PayloadDecoders {
  /** The decoder of `method`'s requests, if the receiver serves it. */
  request(method: string): PayloadDecoder | undefined;
  /** The decoder of the answer to call `id`, if the receiver made that call. */
  response(id: number): PayloadDecoder | undefined;
}

/** Version of the wire protocol this implementation speaks. */
export const PROTOCOL_VERSION = 1;

/** Largest frame body accepted unless both sides agree on another limit: 16 MiB. */
export const DEFAULT_MAX_FRAME: number = 16 * 1024 * 1024;

/** Bytes of the length prefix before every frame body. */
export const FRAME_HEADER_BYTES = 4;

/** The kinds of frame, as they are numbered on the wire. */
export const FrameKind = {
  HELLO: 0,
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 3,
  CANCEL: 4,
  PING: 5,
  PONG: 6,
  GOAWAY: 7,
} as const;

/** What each side says about itself in its first frame. */
export interface HelloInfo {
  /** Name of the served cell (server side). */
  cell?: string;
  /** Hash of the served cell's schema (server side), or of the one the client was built for. */
  schema_hash?: string;
  /** Largest frame body this side accepts. */
  max_frame?: number;
  /** Free-form identity of the sender: a client name, node id or instance id. */
  peer?: string;
  /** Implementation and version, for example `cell-ts/0.1.0`. */
  agent?: string;
}

/** Opens a connection; the first frame each side sends. */
export interface HelloFrame {
  kind: typeof FrameKind.HELLO;
  version: number;
  info: HelloInfo;
}

/** Calls a method. */
export interface RequestFrame {
  kind: typeof FrameKind.REQUEST;
  /** Call id, unique among the calls in flight on this connection; never 0. */
  id: number;
  method: string;
  payload: unknown;
  /** Milliseconds the caller will wait, counted from when the frame is received; 0 is no limit. */
  timeoutMs: number;
  metadata?: Record<string, string>;
  /**
   * How to write the payload: the compiled encoder of the method's request protein (only its
   * declared fields travel), else every own enumerable key of the value.
   */
  encode?: PayloadEncoder;
}

/** The successful result of a call. */
export interface ResponseFrame {
  kind: typeof FrameKind.RESPONSE;
  id: number;
  payload: unknown;
  /** How to write the payload, as {@linkcode RequestFrame.encode}. */
  encode?: PayloadEncoder;
}

/** The failure of a call (id > 0) or of the connection (id 0). */
export interface ErrorFrame {
  kind: typeof FrameKind.ERROR;
  id: number;
  /** A gRPC status number: see `CODE_NUMBERS`. */
  code: number;
  message: string;
  details?: unknown;
}

/** The caller gave up on a call; the server should stop working on it. */
export interface CancelFrame {
  kind: typeof FrameKind.CANCEL;
  id: number;
}

/** Asks the peer for a {@linkcode PongFrame} carrying the same id. */
export interface PingFrame {
  kind: typeof FrameKind.PING;
  id: number;
}

/** Answers a {@linkcode PingFrame}. */
export interface PongFrame {
  kind: typeof FrameKind.PONG;
  id: number;
}

/**
 * The server is shutting down: calls with ids up to `lastId` will still be answered, later ones
 * were not and will not be processed, so they are safe to send elsewhere.
 */
export interface GoAwayFrame {
  kind: typeof FrameKind.GOAWAY;
  lastId: number;
  message: string;
}

/** Any frame of the protocol. */
export type Frame =
  | HelloFrame
  | RequestFrame
  | ResponseFrame
  | ErrorFrame
  | CancelFrame
  | PingFrame
  | PongFrame
  | GoAwayFrame;

/** The frame as the MessagePack array its body holds. */
export function frameToArray(frame: Frame): unknown[] {
  switch (frame.kind) {
    case FrameKind.HELLO:
      return [frame.kind, frame.version, frame.info];
    case FrameKind.REQUEST:
      return frame.metadata === undefined
        ? [frame.kind, frame.id, frame.method, frame.payload, frame.timeoutMs]
        : [frame.kind, frame.id, frame.method, frame.payload, frame.timeoutMs, frame.metadata];
    case FrameKind.RESPONSE:
      return [frame.kind, frame.id, frame.payload];
    case FrameKind.ERROR:
      return frame.details === undefined
        ? [frame.kind, frame.id, frame.code, frame.message]
        : [frame.kind, frame.id, frame.code, frame.message, frame.details];
    case FrameKind.GOAWAY:
      return [frame.kind, frame.lastId, frame.message];
    default:
      return [frame.kind, frame.id];
  }
}

/**
 * Encodes a frame with its length prefix. Throws `RESOURCE_EXHAUSTED` when the body would exceed
 * `maxFrame`, before anything is sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeFrame, FrameKind } from "@cell/sdk/protocol";
 * const bytes = encodeFrame({ kind: FrameKind.PING, id: 1 });
 * assert.ok(bytes.length === 4 + 3); // prefix, then [5, 1]
 * ```
 */
export function encodeFrame(frame: Frame, maxFrame: number = DEFAULT_MAX_FRAME): Uint8Array {
  let out: Uint8Array;
  if (frame.kind === FrameKind.REQUEST || frame.kind === FrameKind.RESPONSE) {
    // The calls' own writers (payloads by their compiled encoders), into room that doubles
    // until the frame fits.
    const writeAt = frame.kind === FrameKind.REQUEST
      ? (b: Uint8Array, p: number, end: number) => encodeRequestAt(frame, b, p, end)
      : (b: Uint8Array, p: number, end: number) => encodeResponseAt(frame, b, p, end);
    let room = 4096;
    for (;;) {
      const written = encodeWith(FRAME_HEADER_BYTES, room, writeAt);
      if (written !== undefined) {
        out = written;
        break;
      }
      if (room > maxFrame) throw frameTooLarge(`more than ${room}`, maxFrame);
      room *= 2;
    }
  } else {
    const a = frameToArray(frame);
    out = encodeTuple(FRAME_HEADER_BYTES, a.length, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
  const length = out.length - FRAME_HEADER_BYTES;
  if (length > maxFrame) throw frameTooLarge(length, maxFrame);
  out[0] = length >>> 24;
  out[1] = (length >>> 16) & 0xff;
  out[2] = (length >>> 8) & 0xff;
  out[3] = length & 0xff;
  return out;
}

/** The error for a frame body of `length` bytes over the peer's `maxFrame`. */
export function frameTooLarge(length: number | string, maxFrame: number): CellError {
  return new CellError(
    "RESOURCE_EXHAUSTED",
    `Message of ${length} bytes exceeds the peer's limit of ${maxFrame} bytes: ` +
      "send smaller messages or raise maxFrame on both sides",
  );
}

/**
 * Encodes a frame's body (no length prefix) straight into `target` from `offset`, in at most
 * `room` bytes; returns where it ends, or -1 when it might not fit (then use
 * {@linkcode encodeFrame}). The bytes are those of {@linkcode encodeFrame}'s body.
 */
export function encodeFrameBodyInto(
  frame: Frame,
  target: Uint8Array,
  offset: number,
  room: number,
): number {
  const end = Math.min(offset + room, target.length);
  switch (frame.kind) {
    case FrameKind.REQUEST:
      return encodeRequestAt(frame, target, offset, end);
    case FrameKind.RESPONSE:
      return encodeResponseAt(frame, target, offset, end);
    default: {
      const a = frameToArray(frame);
      return encodeTupleInto(target, offset, room, a.length, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
  }
}

const isUint32 = (n: number) => (n >>> 0) === n;

/**
 * A REQUEST written in place at `p`, not beyond `end`: returns where it ends, or -1 when it
 * might not fit. Its bytes are the general writer's, but for a payload written by its compiled
 * encoder (see {@linkcode RequestFrame.encode}).
 */
function encodeRequestAt(frame: RequestFrame, b: Uint8Array, p: number, end: number): number {
  const { id, timeoutMs, metadata } = frame;
  if (p + 7 > end) return -1;
  b[p++] = metadata === undefined ? 0x95 : 0x96;
  b[p++] = FrameKind.REQUEST;
  p = isUint32(id) ? writeUint32At(b, p, id) : writeValueAt(b, p, end, id);
  if (p < 0) return -1;
  p = writeStringAt(b, p, end, frame.method);
  if (p < 0) return -1;
  const encode = frame.encode;
  p = encode === undefined
    ? writeValueAt(b, p, end, frame.payload)
    : encode(frame.payload, b, p, end);
  if (p < 0) return -1;
  if (isUint32(timeoutMs) && p + 5 <= end) p = writeUint32At(b, p, timeoutMs);
  else p = writeValueAt(b, p, end, timeoutMs);
  if (p < 0 || metadata === undefined) return p;
  return writeValueAt(b, p, end, metadata);
}

/** A RESPONSE in place, as {@linkcode encodeRequestAt}. */
function encodeResponseAt(frame: ResponseFrame, b: Uint8Array, p: number, end: number): number {
  const id = frame.id;
  if (p + 7 > end) return -1;
  b[p++] = 0x93;
  b[p++] = FrameKind.RESPONSE;
  p = isUint32(id) ? writeUint32At(b, p, id) : writeValueAt(b, p, end, id);
  if (p < 0) return -1;
  const encode = frame.encode;
  return encode === undefined
    ? writeValueAt(b, p, end, frame.payload)
    : encode(frame.payload, b, p, end);
}

/** A frame body that could not be understood; `id` is the call it belongs to, when known. */
export interface MalformedFrame {
  error: CellError;
  id?: number;
}

const isId = (v: unknown): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
/** A MessagePack map as the codec returns it: a plain object, not binary, an array or an extension. */
const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
const isStringMap = (v: unknown): v is Record<string, string> =>
  isMap(v) && Object.values(v).every((x) => typeof x === "string");
/** A decoded value for an error message: never throws, whatever the peer sent. */
const describe = (v: unknown): string =>
  typeof v === "string"
    ? JSON.stringify(v.slice(0, 40))
    : typeof v === "number" || typeof v === "bigint" || typeof v === "boolean"
    ? String(v)
    : v === null
    ? "nil"
    : Array.isArray(v)
    ? "an array"
    : "a map or extension value";

function malformed(what: string, id?: number): MalformedFrame {
  const error = new CellError(
    "INVALID_ARGUMENT",
    `Malformed frame: ${what}; see docs/protocol.md for the frame layout`,
  );
  return id === undefined ? { error } : { error, id };
}

/**
 * Decodes a frame body (without its length prefix). Returns `null` for a well-formed frame of a
 * kind this version does not know (receivers ignore those), or a {@linkcode MalformedFrame}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFrameBody, FrameKind } from "@cell/sdk/protocol";
 * const frame = decodeFrameBody(new Uint8Array([0x92, 0x05, 0x01]));
 * assert.ok(frame !== null && "kind" in frame && frame.kind === FrameKind.PING);
 * ```
 */
export function decodeFrameBody(body: Uint8Array): Frame | MalformedFrame | null {
  let value: unknown;
  try {
    value = decode(body);
  } catch (e) {
    return malformed(`body is not valid MessagePack (${(e as Error).message})`);
  }
  if (!Array.isArray(value) || value.length < 2) {
    return malformed("body must be an array [kind, ...]");
  }
  // Index access, not destructuring: destructuring walks the array's iterator.
  return frameOf(value.length, value[0], value[1], value[2], value[3], value[4], value[5]);
}

/** Fields of the frame being decoded by decodeFrameAt, reused. */
const FIELDS: unknown[] = [undefined, undefined, undefined, undefined, undefined, undefined];

/**
 * Like {@linkcode decodeFrameBody} for the body at `bytes[begin..end)`, read in place (a record in
 * a ring) without a view of it for the common frames.
 */
export function decodeFrameAt(
  bytes: Uint8Array,
  begin: number,
  end: number,
  decoders?: PayloadDecoders,
): Frame | MalformedFrame | null {
  if (end - begin >= 3) {
    const fast = decodeCallAt(bytes, begin, end, decoders);
    if (fast !== undefined) return fast;
  }
  const f = FIELDS;
  const n = decodeTupleRange(bytes, begin, end, f);
  const frame = n < 2
    ? decodeFrameBody(bytes.subarray(begin, end))
    : frameOf(n, f[0], f[1], f[2], f[3], f[4], f[5]);
  f[0] =
    f[1] =
    f[2] =
    f[3] =
    f[4] =
    f[5] =
      undefined;
  return frame;
}

/** The value of the unsigned integer at `b[p]` (up to 32 bits), or -1; sets `cursor.at`. */
function uintAt(b: Uint8Array, p: number, end: number): number {
  const h = b[p]!;
  if (h < 0x80) {
    cursor.at = p + 1;
    return h;
  }
  if (h === 0xcc && p + 2 <= end) {
    cursor.at = p + 2;
    return b[p + 1]!;
  }
  if (h === 0xcd && p + 3 <= end) {
    cursor.at = p + 3;
    return (b[p + 1]! << 8) | b[p + 2]!;
  }
  if (h === 0xce && p + 5 <= end) {
    cursor.at = p + 5;
    return ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0;
  }
  return -1;
}

/**
 * The common REQUEST (no metadata) and RESPONSE frames read in place, payloads by their
 * compiled decoders when `decoders` knows them; `undefined` for anything else, malformed
 * input included (the general path below decodes that, and names the error).
 */
function decodeCallAt(
  b: Uint8Array,
  begin: number,
  end: number,
  decoders: PayloadDecoders | undefined,
): Frame | undefined {
  const h = b[begin];
  const kind = b[begin + 1];
  try {
    if (h === 0x95 && kind === FrameKind.REQUEST) {
      const id = uintAt(b, begin + 2, end);
      if (id < 1 || cursor.at >= end) return undefined;
      const method = readShortStringAt(b, cursor.at, end) ?? readValueAt(b, cursor.at, end);
      if (typeof method !== "string") return undefined;
      let p = cursor.at;
      const decode = decoders?.request(method);
      let payload = decode === undefined ? NO_MATCH : decode(b, p, end);
      if (payload === NO_MATCH) payload = readValueAt(b, p, end);
      p = cursor.at;
      if (p >= end) return undefined;
      const timeoutMs = uintAt(b, p, end);
      if (timeoutMs < 0 || cursor.at !== end) return undefined;
      return { kind: FrameKind.REQUEST, id, method, payload, timeoutMs };
    }
    if (h === 0x93 && kind === FrameKind.RESPONSE) {
      const id = uintAt(b, begin + 2, end);
      if (id < 0 || cursor.at >= end) return undefined;
      const p = cursor.at;
      const decode = decoders?.response(id);
      let payload = decode === undefined ? NO_MATCH : decode(b, p, end);
      if (payload === NO_MATCH) payload = readValueAt(b, p, end);
      if (cursor.at !== end) return undefined;
      return { kind: FrameKind.RESPONSE, id, payload };
    }
  } catch {
    // Malformed: the general path says how.
  }
  return undefined;
}

function frameOf(
  length: number,
  kind: unknown,
  a: unknown,
  b: unknown,
  c: unknown,
  d: unknown,
  e: unknown,
): Frame | MalformedFrame | null {
  if (typeof kind !== "number" || !Number.isInteger(kind) || kind < 0) {
    return malformed(`kind must be a non-negative integer, got ${describe(kind)}`);
  }
  switch (kind) {
    case FrameKind.HELLO: {
      if (!isId(a)) return malformed("HELLO version must be an integer");
      const info = b ?? {};
      if (!isMap(info)) {
        return malformed("HELLO info must be a map");
      }
      return { kind, version: a, info: info as HelloInfo };
    }
    case FrameKind.REQUEST: {
      if (!isId(a) || a === 0) return malformed("REQUEST id must be an integer from 1 to 2^32-1");
      if (typeof b !== "string") return malformed("REQUEST method must be a string", a);
      if (length < 5 || !isId(d)) {
        return malformed("REQUEST timeout must be a non-negative integer (ms, 0 = none)", a);
      }
      if (e !== undefined && e !== null && !isStringMap(e)) {
        return malformed("REQUEST metadata must be a map of strings to strings", a);
      }
      const frame: RequestFrame = { kind, id: a, method: b, payload: c, timeoutMs: d };
      if (e) frame.metadata = e as Record<string, string>;
      return frame;
    }
    case FrameKind.RESPONSE:
      if (!isId(a) || length < 3) return malformed("RESPONSE must be [2, id, payload]");
      return { kind, id: a, payload: b };
    case FrameKind.ERROR: {
      if (!isId(a) || !isId(b) || typeof c !== "string") {
        return malformed("ERROR must be [3, id, code, message, details?]");
      }
      const frame: ErrorFrame = { kind, id: a, code: b, message: c };
      if (d !== undefined && d !== null) frame.details = d;
      return frame;
    }
    case FrameKind.CANCEL:
    case FrameKind.PING:
    case FrameKind.PONG:
      if (!isId(a)) return malformed(`frame kind ${kind} must be [${kind}, id]`);
      return { kind, id: a };
    case FrameKind.GOAWAY:
      if (!isId(a)) return malformed("GOAWAY must be [7, last_id, message]");
      return { kind, lastId: a, message: typeof b === "string" ? b : "" };
    default:
      return null;
  }
}

/** True when `decodeFrameBody` returned a {@linkcode MalformedFrame}. */
export function isMalformed(x: Frame | MalformedFrame | null): x is MalformedFrame {
  return x !== null && "error" in x;
}

/**
 * Splits a byte stream into frame bodies. Read into {@linkcode FrameReader.writable}, report the
 * count with {@linkcode FrameReader.commit}, then take bodies with {@linkcode FrameReader.next}
 * until it returns `null`. A body is valid until the next call to `writable`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeFrame, FrameKind, FrameReader } from "@cell/sdk/protocol";
 * const reader = new FrameReader();
 * const bytes = encodeFrame({ kind: FrameKind.PING, id: 7 });
 * reader.writable(bytes.length).set(bytes);
 * reader.commit(bytes.length);
 * assert.ok(reader.next()?.length === 3);
 * assert.ok(reader.next() === null);
 * ```
 */
export class FrameReader {
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #maxFrame: number;

  /** Creates a reader that refuses bodies longer than `maxFrame` bytes. */
  constructor(maxFrame: number = DEFAULT_MAX_FRAME) {
    this.#maxFrame = maxFrame;
    this.#buf = new Uint8Array(64 * 1024);
  }

  /** Bytes received but not yet returned as bodies. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** A region to read at least `min` bytes into; invalidates bodies returned before. */
  writable(min = 16 * 1024): Uint8Array {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#buf.length - this.#end < min) {
      const live = this.#end - this.#start;
      if (live + min > this.#buf.length) {
        const grown = new Uint8Array(Math.max(this.#buf.length * 2, live + min));
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      } else {
        this.#buf.copyWithin(0, this.#start, this.#end);
      }
      this.#start = 0;
      this.#end = live;
    }
    return this.#buf.subarray(this.#end);
  }

  /** Records that `n` bytes were written into the last {@linkcode FrameReader.writable} region. */
  commit(n: number): void {
    this.#end += n;
  }

  /**
   * The next complete frame body, or `null` if more bytes are needed. Throws `RESOURCE_EXHAUSTED`
   * when a frame announces more than `maxFrame` bytes: the stream cannot be resynchronised
   * after that, so the connection must close.
   */
  next(): Uint8Array | null {
    const available = this.#end - this.#start;
    if (available < FRAME_HEADER_BYTES) return null;
    const b = this.#buf;
    const s = this.#start;
    const length = ((b[s]! << 24) >>> 0) + (b[s + 1]! << 16) + (b[s + 2]! << 8) + b[s + 3]!;
    if (length > this.#maxFrame) {
      throw new CellError(
        "RESOURCE_EXHAUSTED",
        `Frame of ${length} bytes exceeds the limit of ${this.#maxFrame} bytes: ` +
          "send smaller messages or raise maxFrame on both sides",
      );
    }
    if (available < FRAME_HEADER_BYTES + length) {
      // Make sure the next writable() region can hold the rest of this frame in one piece.
      return null;
    }
    this.#start = s + FRAME_HEADER_BYTES + length;
    return b.subarray(s + FRAME_HEADER_BYTES, this.#start);
  }

  /** Bytes still missing for the frame at the head of the buffer, or 0 when none is pending. */
  missing(): number {
    const available = this.#end - this.#start;
    if (available < FRAME_HEADER_BYTES) return 0;
    const b = this.#buf;
    const s = this.#start;
    const length = ((b[s]! << 24) >>> 0) + (b[s + 1]! << 16) + (b[s + 2]! << 8) + b[s + 3]!;
    return Math.max(0, FRAME_HEADER_BYTES + length - available);
  }
}
