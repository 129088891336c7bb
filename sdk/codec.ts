/**
 * MessagePack encoding of payloads, as the wire protocol specifies it: the smallest form of
 * every value, integers kept as integers up to 64 bits, `undefined` object properties left out.
 * Decoding gives plain objects, arrays, strings, numbers (64-bit integers beyond ±2^53 as
 * `bigint`s) and `Uint8Array`s, and refuses extension types, invalid UTF-8, truncated input and
 * trailing bytes. See `msgpack.ts` for why Cell carries its own codec.
 *
 * @module
 */
import { decodeMsgpack, encodeMsgpack } from "./msgpack.ts";

/**
 * Encodes a value as MessagePack.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode } from "@cell/sdk/codec";
 * const bytes = encode({ name: "World" });
 * assert.ok(bytes[0] === 0x81); // a map of one entry
 * assert.ok((decode(bytes) as { name: string }).name === "World");
 * ```
 */
export function encode(value: unknown): Uint8Array {
  return encodeMsgpack(value);
}

/**
 * Encodes `value` like {@linkcode encode}, after `prefix` reserved bytes that the caller fills
 * in: the wire protocol's length prefix, written without copying the body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeAfter } from "@cell/sdk/codec";
 * const bytes = encodeAfter(true, 4);
 * assert.ok(bytes.length === 5 && bytes[4] === 0xc3);
 * ```
 */
export function encodeAfter(value: unknown, prefix: number): Uint8Array {
  return encodeMsgpack(value, prefix);
}

/**
 * Decodes one MessagePack value filling all of `bytes`. Throws on malformed or truncated input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode } from "@cell/sdk/codec";
 * assert.ok(decode(new Uint8Array([0x2a])) === 42);
 * ```
 */
export function decode(bytes: Uint8Array): unknown {
  return decodeMsgpack(bytes);
}
