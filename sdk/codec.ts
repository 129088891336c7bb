/**
 * MessagePack encoding of payloads, as the wire protocol specifies it.
 *
 * msgpackr is the fastest MessagePack library for JavaScript (about 0.4 µs for a small round trip
 * here, against 1.1 µs for `@msgpack/msgpack`), but like every JS MessagePack library it writes an
 * integer-valued `number` outside the 32-bit range as a float64. Go and Rust clients refuse a float
 * where a `u64` is declared, so {@linkcode encode} first turns such numbers into `bigint`s (which
 * msgpackr writes as int64/uint64). The pass copies only the containers it has to change.
 *
 * @module
 */
import { type Options, Packr, RESERVE_START_SPACE, Unpackr } from "msgpackr";

// skipValues and int64AsType "auto" exist in msgpackr but are missing from its type declarations.
const packOptions = {
  useRecords: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  skipValues: [undefined],
};
const packr = new Packr(packOptions as Options);
// copyBuffers: decoded binary must not alias the read buffer, which is reused for the next frames.
const unpackOptions = {
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: "auto",
  copyBuffers: true,
  // No structured-clone references (ext 0x69/0x70): they let a peer build cyclic payloads.
  structuredClone: false,
};
const unpackr = new Unpackr(unpackOptions as unknown as Options);

const INT32_MIN = -0x80000000;
const UINT32_MAX = 0xffffffff;

function isWideInteger(n: number): boolean {
  // ±2^53 too: the decoder returns those as numbers, and they must go back out as integers.
  return (n > UINT32_MAX || n < INT32_MIN) && Number.isInteger(n) && Math.abs(n) <= 2 ** 53;
}

/** Returns `value` with wide integers as bigints; the same object when nothing needed to change. */
function widen(value: unknown): unknown {
  if (typeof value === "number") return isWideInteger(value) ? BigInt(value) : value;
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      const next = widen(item);
      if (next !== item) {
        copy ??= value.slice();
        copy[i] = next;
      }
    }
    return copy ?? value;
  }
  if (value instanceof Map) {
    return new Map([...value].map(([k, v]) => [k, widen(v)]));
  }
  let copy: Record<string, unknown> | undefined;
  const record = value as Record<string, unknown>;
  for (const key in record) {
    const item = record[key];
    const next = widen(item);
    if (next !== item) {
      copy ??= { ...record };
      copy[key] = next;
    }
  }
  return copy ?? value;
}

/**
 * Encodes a value as MessagePack, in the preferred (smallest) form, with `undefined` object
 * properties left out and integers kept as integers up to 64 bits.
 *
 * @example
 * ```ts
 * import { decode, encode } from "@cell/sdk/codec";
 * const bytes = encode({ name: "World" });
 * console.assert(bytes[0] === 0x81); // a map of one entry
 * console.assert((decode(bytes) as { name: string }).name === "World");
 * ```
 */
export function encode(value: unknown): Uint8Array {
  return packr.pack(widen(value));
}

/**
 * Decodes one MessagePack value. 64-bit integers become `number`s when they are safe integers and
 * `bigint`s when they are not; binary becomes a `Uint8Array`. Throws on malformed or truncated input.
 *
 * @example
 * ```ts
 * import { decode } from "@cell/sdk/codec";
 * console.assert(decode(new Uint8Array([0x2a])) === 42);
 * ```
 */
export function decode(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

/**
 * Encodes `value` like {@linkcode encode}, after `prefix` (at most 255) reserved bytes that the
 * caller fills in: the wire protocol's length prefix, written without a copy of the body.
 *
 * @example
 * ```ts
 * import { encodeAfter } from "@cell/sdk/codec";
 * const bytes = encodeAfter(true, 4);
 * console.assert(bytes.length === 5 && bytes[4] === 0xc3);
 * ```
 */
export function encodeAfter(value: unknown, prefix: number): Uint8Array {
  return packr.pack(widen(value), RESERVE_START_SPACE | prefix);
}
