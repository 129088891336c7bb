/**
 * The JSON form of the wire test vectors (see `README.md` beside this file): turns a vector's
 * `meaning` into the values the TypeScript SDK works with. Shared by `generate.ts` and
 * `tests/vectors_test.ts`.
 *
 * @module
 */
import {
  type ErrorFrame,
  type Frame,
  FrameKind,
  type HelloInfo,
  type RequestFrame,
} from "../../sdk/protocol.ts";

/** A JSON value, as `JSON.parse` returns it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What a receiver must do with a vector's bytes. */
export type Expect = "frame" | "ignore" | "malformed" | "frame_too_large";

/** One entry of a vector file. */
export interface Vector {
  /** Unique within its file. */
  name: string;
  /** The bytes, lowercase hex without separators. */
  hex: string;
  /** The decoded value in the JSON form of the README (prose in `malformed.json`). */
  meaning: Json;
  note?: string;
  /** The bytes are not the canonical encoding of `meaning`: check decoding only. */
  decode_only?: boolean;
  /** The same value with positive 64-bit integers as uint64 (0xcf), which encoders may write. */
  alt_hex?: string;
  /** Read the bytes with this frame size limit instead of the 16 MiB default. */
  max_frame?: number;
  /** Files of frames only; `"frame"` when absent. */
  expect?: Expect;
  /** For `"malformed"`: the call id the receiver answers with, when it could be read. */
  call_id?: number;
}

/** A vector as `generate.ts` takes it, before its bytes are computed. */
export interface Definition {
  name: string;
  meaning: Json;
  note?: string;
  /** Literal bytes, for input our encoder would never write. */
  hex?: string;
  /** A body to encode as plain MessagePack and frame, for frames our encoder refuses to build. */
  body?: Json;
  decode_only?: boolean;
  alt_hex?: string;
  max_frame?: number;
  expect?: Expect;
  call_id?: number;
}

/** The vector files, by group. */
export const VECTOR_FILES = [
  "msgpack.json",
  "frames.json",
  "ignored.json",
  "malformed.json",
] as const;

/** Parses lowercase or uppercase hex; throws `TypeError` on anything else. */
export function fromHex(hex: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) {
    throw new TypeError(`Invalid hex '${hex.slice(0, 40)}': use pairs of hex digits only`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const TAGS = new Set(["$int", "$float", "$bytes"]);

function tagOf(json: { [key: string]: Json }): [string, string] | undefined {
  const keys = Object.keys(json);
  if (keys.length !== 1 || !TAGS.has(keys[0]!)) return undefined;
  const value = json[keys[0]!];
  if (typeof value !== "string") {
    throw new TypeError(`Tag ${keys[0]} needs a string, got ${JSON.stringify(value)}`);
  }
  return [keys[0]!, value];
}

/**
 * The SDK value a JSON meaning stands for: `{"$int": "<decimal>"}` becomes a `bigint`,
 * `{"$float": "<number>"}` a `number`, `{"$bytes": "<hex>"}` a `Uint8Array`.
 */
export function fromMeaning(json: Json): unknown {
  if (Array.isArray(json)) return json.map(fromMeaning);
  if (json === null || typeof json !== "object") return json;
  const tag = tagOf(json);
  if (tag?.[0] === "$int") return BigInt(tag[1]);
  if (tag?.[0] === "$float") return Number(tag[1]);
  if (tag?.[0] === "$bytes") return fromHex(tag[1]);
  return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, fromMeaning(v)]));
}

/**
 * True when the meaning holds a `$float` with an integral value up to 2^53 in magnitude
 * (including `-0`): the TypeScript encoder, with one number type, writes those as integers, so it
 * cannot reproduce such a vector's bytes. Encoders in languages with a float type must.
 */
export function hasIntegralFloat(json: Json): boolean {
  if (Array.isArray(json)) return json.some(hasIntegralFloat);
  if (json === null || typeof json !== "object") return false;
  const tag = tagOf(json);
  if (tag === undefined) return Object.values(json).some(hasIntegralFloat);
  const x = Number(tag[1]);
  return tag[0] === "$float" && Number.isInteger(x) && Math.abs(x) <= 2 ** 53;
}

const KIND_BY_NAME: Readonly<Record<string, number>> = FrameKind;

function field(json: { [key: string]: Json }, name: string): Json {
  if (!(name in json)) throw new TypeError(`Frame meaning lacks '${name}': add it`);
  return json[name]!;
}

/** The SDK frame object a frame meaning (`{"kind": "REQUEST", ...}`) stands for. */
export function frameFromMeaning(json: Json): Frame {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new TypeError(`A frame meaning must be an object, got ${JSON.stringify(json)}`);
  }
  const kind = KIND_BY_NAME[String(json.kind)];
  const num = (name: string) => field(json, name) as number;
  const str = (name: string) => field(json, name) as string;
  switch (kind) {
    case FrameKind.HELLO:
      return {
        kind,
        version: num("version"),
        info: fromMeaning(field(json, "info")) as HelloInfo,
      };
    case FrameKind.REQUEST: {
      const frame: RequestFrame = {
        kind,
        id: num("id"),
        method: str("method"),
        payload: fromMeaning(field(json, "payload")),
        timeoutMs: num("timeout_ms"),
      };
      if ("metadata" in json) frame.metadata = json.metadata as Record<string, string>;
      return frame;
    }
    case FrameKind.RESPONSE:
      return { kind, id: num("id"), payload: fromMeaning(field(json, "payload")) };
    case FrameKind.ERROR: {
      const frame: ErrorFrame = { kind, id: num("id"), code: num("code"), message: str("message") };
      if ("details" in json) frame.details = fromMeaning(json.details!);
      return frame;
    }
    case FrameKind.CANCEL:
    case FrameKind.PING:
    case FrameKind.PONG:
      return { kind, id: num("id") };
    case FrameKind.GOAWAY:
      return { kind, lastId: num("last_id"), message: str("message") };
    default:
      throw new TypeError(`Unknown frame kind ${JSON.stringify(json.kind)}: use a FrameKind name`);
  }
}

const EXACT = 2n ** 53n;

/**
 * `value` in one representation for comparisons: every `Uint8Array` subclass (such as Node's
 * `Buffer`) becomes a plain one, and every `bigint` a double holds exactly (up to ±2^53) a `number`,
 * since decoders may return either for those.
 */
export function plain(value: unknown): unknown {
  if (typeof value === "bigint") return value >= -EXACT && value <= EXACT ? Number(value) : value;
  if (value instanceof Uint8Array) {
    return value.constructor === Uint8Array ? value : new Uint8Array(value);
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
}
