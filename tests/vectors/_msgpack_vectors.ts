/**
 * The definitions of `msgpack.json`: single MessagePack values. Read by `generate.ts`, which computes their bytes.
 *
 * @module
 */
import type { Definition } from "./_meaning.ts";
import { toHex } from "./_meaning.ts";

const ascii = (n: number) => "abcdefghijklmnopqrstuvwxyz0123456789".repeat(8).slice(0, n);
const bytes = (n: number) => ({
  $bytes: toHex(Uint8Array.from({ length: n }, (_, i) => i & 0xff)),
});
const keys = (n: number) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(2, "0")}`, i]));
const SMALLER = "decoders must accept every integer width; encoders write the smallest";

/** Every scalar type and width boundary, and containers. */
export const MSGPACK: Definition[] = [
  { name: "nil", meaning: null },
  { name: "false", meaning: false },
  { name: "true", meaning: true },
  { name: "positive fixint 0", meaning: 0 },
  { name: "positive fixint 127 (largest)", meaning: 127 },
  { name: "uint8 128 (smallest)", meaning: 128 },
  { name: "uint8 255 (largest)", meaning: 255 },
  { name: "uint16 256 (smallest)", meaning: 256 },
  { name: "uint16 65535 (largest)", meaning: 65535 },
  { name: "uint32 65536 (smallest)", meaning: 65536 },
  { name: "uint32 4294967295 (largest)", meaning: 4294967295 },
  {
    name: "uint64 4294967296 (smallest positive 64-bit)",
    meaning: 4294967296,
    alt_hex: "d30000000100000000",
    note: "Positive 64-bit values are written as uint64 (0xcf), the smallest form; decoders " +
      "must accept int64 (0xd3) too",
  },
  {
    name: "uint64 2^53-1 (largest exact double)",
    meaning: 9007199254740991,
    alt_hex: "d3001fffffffffffff",
  },
  {
    name: "uint64 2^53 (beyond exact doubles)",
    meaning: { $int: "9007199254740992" },
    alt_hex: "d30020000000000000",
    note: "The smallest integer that is not a safe JavaScript integer",
  },
  {
    name: "uint64 2^63-1 (largest int64)",
    meaning: { $int: "9223372036854775807" },
    alt_hex: "d37fffffffffffffff",
  },
  {
    name: "uint64 2^63 (smallest that needs uint64)",
    meaning: { $int: "9223372036854775808" },
  },
  { name: "uint64 2^64-1 (largest)", meaning: { $int: "18446744073709551615" } },
  { name: "negative fixint -1", meaning: -1 },
  { name: "negative fixint -32 (smallest)", meaning: -32 },
  { name: "int8 -33 (largest)", meaning: -33 },
  { name: "int8 -128 (smallest)", meaning: -128 },
  { name: "int16 -129 (largest)", meaning: -129 },
  { name: "int16 -32768 (smallest)", meaning: -32768 },
  { name: "int32 -32769 (largest)", meaning: -32769 },
  { name: "int32 -2147483648 (smallest)", meaning: -2147483648 },
  { name: "int64 -2147483649 (largest negative 64-bit)", meaning: -2147483649 },
  { name: "int64 -(2^53-1)", meaning: -9007199254740991 },
  { name: "int64 -2^53", meaning: { $int: "-9007199254740992" } },
  { name: "int64 -2^63 (smallest)", meaning: { $int: "-9223372036854775808" } },
  { name: "uint8 form of 1", hex: "cc01", meaning: 1, decode_only: true, note: SMALLER },
  { name: "uint16 form of 200", hex: "cd00c8", meaning: 200, decode_only: true, note: SMALLER },
  { name: "uint32 form of 0", hex: "ce00000000", meaning: 0, decode_only: true, note: SMALLER },
  {
    name: "uint64 form of 1",
    hex: "cf0000000000000001",
    meaning: 1,
    decode_only: true,
    note: SMALLER,
  },
  { name: "int8 form of 5", hex: "d005", meaning: 5, decode_only: true, note: SMALLER },
  { name: "int32 form of -1", hex: "d2ffffffff", meaning: -1, decode_only: true, note: SMALLER },
  {
    name: "int64 form of 5",
    hex: "d30000000000000005",
    meaning: 5,
    decode_only: true,
    note: SMALLER,
  },
  { name: "float64 1.5", meaning: 1.5 },
  { name: "float64 -1.5", meaning: -1.5 },
  { name: "float64 0.1", meaning: 0.1 },
  { name: "float64 1e300", meaning: 1e300 },
  { name: "float64 smallest subnormal", meaning: 5e-324 },
  {
    name: "float64 1.0",
    hex: "cb3ff0000000000000",
    meaning: { $float: "1" },
    note: "An integral float stays a float64; the TypeScript encoder writes the number 1 as 0x01",
  },
  {
    name: "float64 -0.0",
    hex: "cb8000000000000000",
    meaning: { $float: "-0" },
    note: "The TypeScript encoder writes the number -0 as the integer 0",
  },
  {
    name: "float64 2^54",
    meaning: { $float: "18014398509481984" },
    note: "An integral float beyond 2^53; the TypeScript encoder writes such numbers as float64",
  },
  { name: "float64 NaN", meaning: { $float: "NaN" }, note: "The quiet NaN 0x7ff8000000000000" },
  { name: "float64 Infinity", meaning: { $float: "Infinity" } },
  { name: "float64 -Infinity", meaning: { $float: "-Infinity" } },
  {
    name: "float32 1.5",
    hex: "ca3fc00000",
    meaning: 1.5,
    decode_only: true,
    note: "Decoders must accept float32; encoders write float64",
  },
  {
    name: "float32 0.1",
    hex: "ca3dcccccd",
    meaning: 0.10000000149011612,
    decode_only: true,
    note: "The float32 nearest 0.1, widened to float64",
  },
  { name: "empty string", meaning: "" },
  { name: "one-byte string", meaning: "a" },
  { name: "string with control characters", meaning: "a\u0000b\n" },
  { name: "two-byte UTF-8 characters", meaning: "héllo" },
  { name: "three-byte UTF-8 characters", meaning: "日本語" },
  { name: "four-byte UTF-8 character (outside the BMP)", meaning: "😀" },
  { name: "fixstr of 31 bytes (largest)", meaning: ascii(31) },
  { name: "str8 of 32 bytes (smallest)", meaning: ascii(32) },
  {
    name: "str8 of 16 two-byte characters",
    meaning: "é".repeat(16),
    note: "Lengths count UTF-8 bytes, not characters: 16 characters are 32 bytes, so str8",
  },
  { name: "str8 of 255 bytes (largest)", meaning: ascii(36).repeat(8).slice(0, 255) },
  { name: "str16 of 256 bytes (smallest)", meaning: ascii(36).repeat(8).slice(0, 256) },
  { name: "str16 of 100 three-byte characters", meaning: "€".repeat(100) },
  { name: "empty bin", meaning: { $bytes: "" } },
  { name: "bin8 of 3 bytes", meaning: { $bytes: "00ff7f" } },
  { name: "bin8 of 255 bytes (largest)", meaning: bytes(255) },
  { name: "bin16 of 256 bytes (smallest)", meaning: bytes(256) },
  { name: "empty array", meaning: [] },
  { name: "array of mixed scalars", meaning: [1, "a", null, true, 1.5, { $bytes: "01" }] },
  { name: "fixarray of 15 elements (largest)", meaning: Array.from({ length: 15 }, (_, i) => i) },
  { name: "array16 of 16 elements (smallest)", meaning: Array.from({ length: 16 }, (_, i) => i) },
  { name: "nested arrays", meaning: [[[]], [1, [2, [3]]]] },
  { name: "empty map", meaning: {} },
  { name: "map of one entry", meaning: { name: "World" } },
  { name: "fixmap of 15 entries (largest)", meaning: keys(15) },
  { name: "map16 of 16 entries (smallest)", meaning: keys(16) },
  { name: "nested maps", meaning: { a: { b: { c: [1, { d: null }] } } } },
  {
    name: "map holding every type",
    meaning: {
      nil: null,
      bool: false,
      int: -200,
      big: { $int: "18446744073709551615" },
      float: 0.5,
      str: "ünïcödé",
      bin: { $bytes: "deadbeef" },
      list: [1, 2, 3],
      map: { k: "v" },
    },
  },
];
