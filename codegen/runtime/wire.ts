// Runtime of generated TypeScript clients, part 1: errors, MessagePack and frames.
// codegen/typescript.ts embeds this file and client.ts in every generated client (see
// codegen/_embed.ts); they import only node: built-ins so the generated file runs on Deno and Node.
// Protocol: docs/protocol.md (wire protocol v1).
import { Buffer } from "node:buffer";

// --- errors -------------------------------------------------------------------------------------

/** Error codes, gRPC's numbers (docs/protocol.md section 12). */
export const CODES = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** The name of an error code. */
export type Code = keyof typeof CODES;

/** The code named by a wire number; numbers outside the table are `UNKNOWN`. */
export function codeFromNumber(n: number): Code {
  for (const [name, value] of Object.entries(CODES)) if (value === n) return name as Code;
  return "UNKNOWN";
}

/** A failed call: a code, a message and, from the server, optional structured details. */
export class CellError extends Error {
  /** The error's code. */
  readonly code: Code;
  /** Structured data about the failure, if the server sent any. */
  readonly details?: unknown;

  /** Creates an error with a code and a message. */
  constructor(code: Code, message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CellError";
    this.code = code;
    if (options.details !== undefined) this.details = options.details;
  }

  /** The code's wire number. */
  get codeNumber(): number {
    return CODES[this.code];
  }

  /** Anything thrown as a `CellError` (`UNKNOWN` unless it is one already). */
  static from(reason: unknown): CellError {
    if (reason instanceof CellError) return reason;
    return new CellError("UNKNOWN", reason instanceof Error ? reason.message : String(reason), {
      cause: reason,
    });
  }

  /** `CODE: message`. */
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

// --- MessagePack (docs/protocol.md section 13) --------------------------------------------------

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  pos = 0;

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  head(tag: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    this.reserve(1 + size);
    this.buf[this.pos++] = tag;
    if (size === 1) this.view.setUint8(this.pos, Number(value));
    else if (size === 2) this.view.setUint16(this.pos, Number(value));
    else if (size === 4) this.view.setUint32(this.pos, Number(value));
    else if (tag === 0xcb) this.view.setFloat64(this.pos, Number(value));
    else if (tag === 0xcf) this.view.setBigUint64(this.pos, BigInt(value));
    else this.view.setBigInt64(this.pos, BigInt(value));
    this.pos += size;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  length(n: number, fix: number, fixMax: number, t8: number, t16: number, t32: number): void {
    if (n <= fixMax && fix >= 0) this.byte(fix | n);
    else if (n < 0x100 && t8 >= 0) this.head(t8, 1, n);
    else if (n < 0x10000) this.head(t16, 2, n);
    else this.head(t32, 4, n);
  }

  int(v: number | bigint): void {
    if (v >= 0) {
      if (v < 0x80) this.byte(Number(v));
      else if (v < 0x100) this.head(0xcc, 1, v);
      else if (v < 0x10000) this.head(0xcd, 2, v);
      else if (v < 0x100000000) this.head(0xce, 4, v);
      else this.head(0xcf, 8, v);
    } else if (v >= -32) this.byte(Number(v) & 0xff);
    else if (v >= -0x80) this.head(0xd0, 1, Number(v) & 0xff);
    else if (v >= -0x8000) this.head(0xd1, 2, Number(v) & 0xffff);
    else if (v >= -0x80000000) this.head(0xd2, 4, Number(v) >>> 0);
    else this.head(0xd3, 8, v);
  }

  value(v: unknown, depth: number): void {
    if (depth > 256) throw new RangeError("Value nests deeper than 256 levels");
    if (v === null || v === undefined) this.byte(0xc0);
    else if (v === false) this.byte(0xc2);
    else if (v === true) this.byte(0xc3);
    else if (typeof v === "number") {
      if (Number.isInteger(v) && Math.abs(v) <= 2 ** 53) this.int(v === 0 ? 0 : v);
      else this.head(0xcb, 8, v);
    } else if (typeof v === "bigint") {
      if (v > 0xffffffffffffffffn || v < -0x8000000000000000n) {
        throw new RangeError(`Integer ${v} does not fit in 64 bits`);
      }
      this.int(v);
    } else if (typeof v === "string") {
      const utf8 = Buffer.from(v, "utf8");
      this.length(utf8.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      this.bytes(utf8);
    } else if (v instanceof Uint8Array) {
      this.length(v.length, -1, -1, 0xc4, 0xc5, 0xc6);
      this.bytes(v);
    } else if (Array.isArray(v)) {
      this.length(v.length, 0x90, 15, -1, 0xdc, 0xdd);
      for (const item of v) this.value(item, depth + 1);
    } else if (typeof v === "object") {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      this.length(entries.length, 0x80, 15, -1, 0xde, 0xdf);
      for (const [key, x] of entries) {
        this.value(key, depth + 1);
        this.value(x, depth + 1);
      }
    } else throw new TypeError(`Cannot encode a ${typeof v} as MessagePack`);
  }
}

/** `value` as MessagePack: smallest integer forms, float64 for other numbers, bin for bytes. */
export function encode(value: unknown): Uint8Array {
  const w = new Writer();
  w.value(value, 0);
  return w.buf.slice(0, w.pos);
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Reader {
  pos = 0;
  readonly view: DataView;
  readonly buf: Uint8Array;
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number): number {
    if (this.pos + n > this.buf.length) throw new RangeError("MessagePack value is truncated");
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u(size: 1 | 2 | 4): number {
    const at = this.need(size);
    return size === 1
      ? this.view.getUint8(at)
      : size === 2
      ? this.view.getUint16(at)
      : this.view.getUint32(at);
  }

  big(signed: boolean): number | bigint {
    const at = this.need(8);
    const v = signed ? this.view.getBigInt64(at) : this.view.getBigUint64(at);
    return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  }

  str(n: number): string {
    const at = this.need(n);
    return UTF8.decode(this.buf.subarray(at, at + n));
  }

  bin(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.slice(at, at + n);
  }

  array(n: number, depth: number): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(this.value(depth + 1));
    return out;
  }

  map(n: number, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.value(depth + 1);
      if (typeof key !== "string") throw new TypeError("MessagePack map key is not a string");
      Object.defineProperty(out, key, {
        value: this.value(depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  value(depth: number): unknown {
    if (depth > 256) throw new RangeError("MessagePack value nests deeper than 256 levels");
    const b = this.u(1);
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f);
    if (b >= 0x90 && b <= 0x9f) return this.array(b & 0x0f, depth);
    if (b >= 0x80 && b <= 0x8f) return this.map(b & 0x0f, depth);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.u(1));
      case 0xc5:
        return this.bin(this.u(2));
      case 0xc6:
        return this.bin(this.u(4));
      case 0xca:
        return this.view.getFloat32(this.need(4));
      case 0xcb:
        return this.view.getFloat64(this.need(8));
      case 0xcc:
        return this.u(1);
      case 0xcd:
        return this.u(2);
      case 0xce:
        return this.u(4);
      case 0xcf:
        return this.big(false);
      case 0xd0:
        return this.view.getInt8(this.need(1));
      case 0xd1:
        return this.view.getInt16(this.need(2));
      case 0xd2:
        return this.view.getInt32(this.need(4));
      case 0xd3:
        return this.big(true);
      case 0xd9:
        return this.str(this.u(1));
      case 0xda:
        return this.str(this.u(2));
      case 0xdb:
        return this.str(this.u(4));
      case 0xdc:
        return this.array(this.u(2), depth);
      case 0xdd:
        return this.array(this.u(4), depth);
      case 0xde:
        return this.map(this.u(2), depth);
      case 0xdf:
        return this.map(this.u(4), depth);
      default:
        throw new TypeError(`MessagePack byte 0x${b.toString(16)} is an extension or never used`);
    }
  }
}

/** The one MessagePack value in `bytes`; throws on anything else, trailing bytes included. */
export function decode(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  const v = r.value(0);
  if (r.pos !== bytes.length) throw new RangeError("Bytes after the MessagePack value");
  return v;
}

// --- frames (docs/protocol.md sections 3, 4 and 11) ---------------------------------------------

/** The default largest frame body, 16 MiB. */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

/** A decoded frame: the array body of docs/protocol.md section 4 with named fields. */
export type Frame =
  | { kind: "HELLO"; version: number; info: Record<string, unknown> }
  | {
    kind: "REQUEST";
    id: number;
    method: string;
    payload: unknown;
    timeout_ms: number;
    metadata?: Record<string, string>;
  }
  | { kind: "RESPONSE"; id: number; payload: unknown }
  | { kind: "ERROR"; id: number; code: number; message: string; details?: unknown }
  | { kind: "CANCEL" | "PING" | "PONG"; id: number }
  | { kind: "GOAWAY"; last_id: number; message: string };

const KINDS = ["HELLO", "REQUEST", "RESPONSE", "ERROR", "CANCEL", "PING", "PONG", "GOAWAY"];

/** A frame body that breaks docs/protocol.md section 11; `callId` is 0 when unknown. */
export class MalformedFrameError extends CellError {
  /** The call id the answering ERROR carries. */
  readonly callId: number;
  constructor(what: string, callId = 0) {
    super("INVALID_ARGUMENT", `Malformed frame: ${what}`);
    this.callId = callId;
  }
}

const isU32 = (v: unknown): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/**
 * The frame in a body, `null` for a well-formed frame of an unknown kind (to be ignored); throws
 * {@linkcode MalformedFrameError}.
 */
export function decodeFrame(body: Uint8Array): Frame | null {
  let v: unknown;
  try {
    v = decode(body);
  } catch (e) {
    throw new MalformedFrameError(`body is not valid MessagePack (${(e as Error).message})`);
  }
  if (!Array.isArray(v) || v.length < 2) throw new MalformedFrameError("body must be an array");
  const [kind, a, b, c, d, e] = v;
  if (typeof kind !== "number" || !Number.isInteger(kind) || kind < 0) {
    throw new MalformedFrameError("kind must be a non-negative integer");
  }
  const bad = (what: string, id = 0): never => {
    throw new MalformedFrameError(what, id);
  };
  switch (kind) {
    case 0:
      if (!isU32(a)) bad("HELLO version must be a u32");
      if (b !== null && b !== undefined && !isMap(b)) bad("HELLO info must be a map");
      return { kind: "HELLO", version: a as number, info: (b ?? {}) as Record<string, unknown> };
    case 1: {
      if (!isU32(a) || a === 0) bad("REQUEST id must be from 1 to 2^32-1");
      const id = a as number;
      if (typeof b !== "string") bad("REQUEST method must be a string", id);
      if (v.length < 5 || !isU32(d)) bad("REQUEST timeout_ms must be a u32", id);
      const frame: Frame = { kind: "REQUEST", id, method: b, payload: c, timeout_ms: d };
      if (e !== null && e !== undefined) {
        if (!isMap(e) || !Object.values(e).every((x) => typeof x === "string")) {
          bad("REQUEST metadata must map strings to strings", id);
        }
        frame.metadata = e as Record<string, string>;
      }
      return frame;
    }
    case 2:
      if (!isU32(a) || v.length < 3) bad("RESPONSE must be [2, id, payload]");
      return { kind: "RESPONSE", id: a as number, payload: b };
    case 3: {
      if (!isU32(a) || !isU32(b) || typeof c !== "string") {
        bad("ERROR must be [3, id, code, message]");
      }
      const frame: Frame = { kind: "ERROR", id: a as number, code: b as number, message: c };
      if (d !== null && d !== undefined) frame.details = d;
      return frame;
    }
    case 4:
    case 5:
    case 6:
      if (!isU32(a)) bad(`${KINDS[kind]} must be [${kind}, id]`);
      return { kind: KINDS[kind] as "CANCEL" | "PING" | "PONG", id: a as number };
    case 7:
      if (!isU32(a)) bad("GOAWAY must be [7, last_id, message]");
      return { kind: "GOAWAY", last_id: a as number, message: typeof b === "string" ? b : "" };
    default:
      return null;
  }
}

/** The frame as its array body, optional fields left off when absent. */
export function frameToArray(f: Frame): unknown[] {
  switch (f.kind) {
    case "HELLO":
      return [0, f.version, f.info];
    case "REQUEST":
      return [1, f.id, f.method, f.payload, f.timeout_ms, ...(f.metadata ? [f.metadata] : [])];
    case "RESPONSE":
      return [2, f.id, f.payload];
    case "ERROR":
      return [3, f.id, f.code, f.message, ...(f.details === undefined ? [] : [f.details])];
    case "GOAWAY":
      return [7, f.last_id, f.message];
    default:
      return [KINDS.indexOf(f.kind), f.id];
  }
}

/** `body` behind its u32 big-endian length prefix. */
export function frameBytes(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** Splits a byte stream into frame bodies, refusing a length over `maxFrame` from its prefix. */
export class FrameReader {
  #buf = new Uint8Array(0);
  readonly maxFrame: number;
  constructor(maxFrame: number = DEFAULT_MAX_FRAME) {
    this.maxFrame = maxFrame;
  }

  /** Adds bytes read from the stream. */
  push(chunk: Uint8Array): void {
    const next = new Uint8Array(this.#buf.length + chunk.length);
    next.set(this.#buf);
    next.set(chunk, this.#buf.length);
    this.#buf = next;
  }

  /** The next whole body, or `null`; throws `RESOURCE_EXHAUSTED` for an oversized length. */
  next(): Uint8Array | null {
    if (this.#buf.length < 4) return null;
    const length = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(0);
    if (length > this.maxFrame) {
      throw new CellError(
        "RESOURCE_EXHAUSTED",
        `Frame of ${length} bytes is over the limit of ${this.maxFrame} bytes`,
      );
    }
    if (this.#buf.length < 4 + length) return null;
    const body = this.#buf.slice(4, 4 + length);
    this.#buf = this.#buf.subarray(4 + length);
    return body;
  }

  /** Bytes received but not yet returned as a body. */
  get buffered(): number {
    return this.#buf.length;
  }
}
