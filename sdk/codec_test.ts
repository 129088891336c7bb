import assert from "node:assert/strict";
import fc from "fast-check";
import { decode, encode } from "./codec.ts";

const RUNS = { numRuns: 500 };

/** Every integer a `number` holds exactly, weighted so that each MessagePack width gets its share. */
const safeInteger = fc.oneof(
  fc.integer({ min: -32, max: 127 }),
  fc.integer({ min: -128, max: 255 }),
  fc.integer({ min: -32768, max: 65535 }),
  fc.integer({ min: -0x80000000, max: 0xffffffff }),
  fc.maxSafeInteger(),
  fc.constantFrom(
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    0x100000000,
    -0x80000001,
    0xffffffff,
    -0x80000000,
  ),
);

const key = fc.string({ unit: "binary", maxLength: 12 });

/** JSON-like values with binary, as payloads are: no `undefined`, no `-0`, string keys. */
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    safeInteger,
    fc.double().map((x) => (Object.is(x, -0) ? 0 : x)),
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({ unit: "grapheme-ascii", minLength: 30, maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(tie("value"), { maxLength: 8 }),
    fc.dictionary(key, tie("value"), { maxKeys: 8, noNullPrototype: true }),
  ),
}));

/** `value` with binary as plain `Uint8Array`s: decoding may hand back Node `Buffer`s. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

/** The first byte and length MessagePack prescribes for an integer, worked out from the spec. */
function smallestForm(n: number): [head: number, length: number] {
  if (n >= 0) {
    if (n <= 0x7f) return [n, 1];
    if (n <= 0xff) return [0xcc, 2];
    if (n <= 0xffff) return [0xcd, 3];
    if (n <= 0xffffffff) return [0xce, 5];
    return [0xcf, 9]; // Positive 64-bit values go out as uint64: see docs/protocol.md.
  }
  if (n >= -32) return [n & 0xff, 1];
  if (n >= -0x80) return [0xd0, 2];
  if (n >= -0x8000) return [0xd1, 3];
  if (n >= -0x80000000) return [0xd2, 5];
  return [0xd3, 9];
}

function integerOf(bytes: Uint8Array): bigint {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[0]) {
    case 0xcc:
      return BigInt(view.getUint8(1));
    case 0xcd:
      return BigInt(view.getUint16(1));
    case 0xce:
      return BigInt(view.getUint32(1));
    case 0xcf:
      return view.getBigUint64(1);
    case 0xd0:
      return BigInt(view.getInt8(1));
    case 0xd1:
      return BigInt(view.getInt16(1));
    case 0xd2:
      return BigInt(view.getInt32(1));
    case 0xd3:
      return view.getBigInt64(1);
    default:
      return BigInt(view.getInt8(0)); // A fixint: the byte itself, read as signed for -32..-1.
  }
}

Deno.test("decode(encode(value)) gives back any JSON-like value, binary included", () => {
  fc.assert(
    fc.property(value, (v) => {
      assert.deepStrictEqual(plain(decode(encode(v))), v);
    }),
    RUNS,
  );
});

Deno.test("encode() writes every safe integer as an integer in its smallest form", () => {
  fc.assert(
    fc.property(safeInteger, (n) => {
      const bytes = encode(n);
      const [head, length] = smallestForm(n);
      assert.equal(bytes[0], head, `head of ${n}`);
      assert.equal(bytes.length, length, `length of ${n}`);
      assert.equal(integerOf(bytes), BigInt(n));
      const back = decode(bytes);
      assert.equal(typeof back, "number");
      assert.equal(back, n);
    }),
    RUNS,
  );
});

Deno.test("encode() writes integers inside arrays and maps exactly as on their own", () => {
  fc.assert(
    fc.property(safeInteger, (n) => {
      const alone = [...encode(n)];
      assert.deepEqual([...encode([n])], [0x91, ...alone]);
      assert.deepEqual([...encode({ k: [n] })], [0x81, 0xa1, 0x6b, 0x91, ...alone]);
    }),
    RUNS,
  );
});

Deno.test("encode() writes bigints from -2^63 to 2^64-1 as integers in their smallest form", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), (b) => {
      const bytes = encode(b);
      if (b >= -(2n ** 53n) && b <= 2n ** 53n) {
        // The same bytes as the equal number.
        assert.deepEqual([...bytes], [...encode(Number(b))]);
      } else {
        assert.equal(bytes.length, 9);
        assert.equal(bytes[0], b < 0n ? 0xd3 : 0xcf);
      }
      assert.equal(integerOf(bytes), b);
      const back = decode(bytes);
      assert.equal(BigInt(back as number | bigint), b);
      if (b > 2n ** 53n || b < -(2n ** 53n)) assert.equal(typeof back, "bigint");
    }),
    RUNS,
  );
});

Deno.test("an integer decoded from the wire encodes back as an integer", () => {
  const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n });
  const edges = fc.constantFrom(2n ** 53n, -(2n ** 53n), 2n ** 53n + 1n, 2n ** 53n - 1n);
  fc.assert(
    fc.property(fc.oneof(int64, edges), (b) => {
      const again = encode(decode(encode(b)));
      assert.notEqual(again[0], 0xcb, `${b} came back as a float64`);
      assert.equal(integerOf(again), b);
    }),
    RUNS,
  );
});

Deno.test("encode() writes every non-integral double as a float64", () => {
  fc.assert(
    fc.property(fc.double({ noInteger: true }), (x) => {
      const bytes = encode(x);
      assert.equal(bytes.length, 9);
      assert.equal(bytes[0], 0xcb);
      assert.ok(Object.is(decode(bytes), x));
    }),
    RUNS,
  );
});

Deno.test("encode() writes integral numbers beyond 2^53 as float64: bigints are the way", () => {
  assert.equal(encode(2 ** 54)[0], 0xcb);
  assert.equal(encode(-(2 ** 60))[0], 0xcb);
  assert.equal(encode(2 ** 53)[0], 0xcf);
  assert.equal(encode(2n ** 54n)[0], 0xcf);
});

Deno.test("encode() leaves the value it is given unchanged", () => {
  fc.assert(
    fc.property(value, fc.maxSafeInteger(), (v, n) => {
      const input = { v, n, list: [n, v] };
      const before = structuredClone(input);
      encode(input);
      assert.deepStrictEqual(input, before);
    }),
    RUNS,
  );
});

Deno.test("encode() leaves out undefined properties and writes undefined elements as nil", () => {
  assert.deepEqual([...encode({ a: undefined, b: 1 })], [...encode({ b: 1 })]);
  assert.deepEqual([...encode([undefined])], [0x91, 0xc0]);
});

Deno.test("encode() writes strings as UTF-8 with a header counting bytes", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => {
      const utf8 = new TextEncoder().encode(s);
      const bytes = encode(s);
      const header = utf8.length < 32 ? 1 : utf8.length < 256 ? 2 : 3;
      assert.equal(bytes.length, header + utf8.length);
      assert.deepEqual([...bytes.subarray(header)], [...utf8]);
    }),
    RUNS,
  );
});

Deno.test("decode() refuses truncated input and bytes after the value", () => {
  fc.assert(
    fc.property(value, fc.uint8Array({ minLength: 1, maxLength: 4 }), (v, extra) => {
      const bytes = encode(v);
      assert.throws(() => decode(bytes.subarray(0, bytes.length - 1)));
      assert.throws(() => decode(Uint8Array.from([...bytes, ...extra])));
    }),
    RUNS,
  );
});

Deno.test("decode() of arbitrary bytes returns a value or throws an Error", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        decode(bytes);
      } catch (e) {
        assert.ok(e instanceof Error, `threw ${String(e)}`);
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("decode() keeps a __proto__ map key as an own property, never the prototype", () => {
  const bytes = Uint8Array.from([0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01]);
  const decoded = decode(bytes) as Record<string, unknown>;
  assert.deepEqual(Object.keys(decoded), ["__proto__"]);
  assert.equal(Object.getOwnPropertyDescriptor(decoded, "__proto__")?.value, 1);
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
});

Deno.test("decode() never builds a cyclic value from a peer's bytes", () => {
  // msgpackr's structured-clone extensions: ext 0x69 names an object, ext 0x70 points back to it.
  const selfReferencing = Uint8Array.from([
    ...[0xd6, 0x69, 0, 0, 0, 1, 0x91],
    ...[0xd6, 0x70, 0, 0, 0, 1],
  ]);
  let value: unknown;
  try {
    value = decode(selfReferencing);
  } catch {
    return; // Refusing the extension is the fix.
  }
  assert.ok(!(Array.isArray(value) && value[0] === value), "decoded an array that contains itself");
});
