// Cell's MessagePack codec against an independent implementation, the reference
// @msgpack/msgpack: both must read each other's bytes as the same values.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { decode, encode } from "@cell/sdk/codec";

const reference = {
  encoder: new Encoder({ useBigInt64: true, ignoreUndefined: true }),
  decoder: new Decoder({ useBigInt64: true }),
};

/** Compares numbers and bigints by value: the two sides choose differently between them. */
function normal(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(normal);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normal(x)]));
  }
  return v;
}

const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.double({ noNaN: true }).filter((x) => !Number.isInteger(x)),
    fc.string({ unit: "binary", maxLength: 50 }),
    fc.string({ unit: "grapheme", minLength: 20, maxLength: 400 }),
    fc.uint8Array({ maxLength: 600 }),
    fc.array(tie("v"), { maxLength: 6 }),
    fc.dictionary(
      fc.string({ maxLength: 10 }).filter((k) => k !== "__proto__"),
      tie("v"),
      { maxKeys: 6, noNullPrototype: true },
    ),
  ),
})).v;

Deno.test("the reference decoder reads what Cell's encoder writes", () => {
  fc.assert(
    fc.property(value, (v) => {
      assert.deepStrictEqual(normal(reference.decoder.decode(encode(v))), normal(v));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("Cell's decoder reads what the reference encoder writes", () => {
  fc.assert(
    fc.property(value, (v) => {
      assert.deepStrictEqual(normal(decode(reference.encoder.encode(v))), normal(v));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("Cell's encoder writes the same bytes as the reference for safe integers and strings", () => {
  // The reference writes the smallest forms too, except that it writes integers beyond 32
  // bits as int64/uint64 the same way only when given bigints; so compare what both define.
  fc.assert(
    fc.property(
      fc.oneof(fc.integer(), fc.string({ unit: "binary", maxLength: 300 })),
      (v) => {
        assert.deepStrictEqual([...encode(v)], [...reference.encoder.encode(v)]);
      },
    ),
    { numRuns: 2000 },
  );
});
