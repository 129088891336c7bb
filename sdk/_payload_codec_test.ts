// The compiled payload codecs against the general codec: the same bytes for the declared
// fields, the same decoded values, and every input they do not read left to the general path.
import fc from "fast-check";
import nodeAssert from "node:assert/strict";
import { decode, encode } from "./codec.ts";
import { cursor } from "./msgpack.ts";
import { NO_MATCH, payloadDecoder, payloadEncoder } from "./_payload_codec.ts";
import { protein, t } from "./protein.ts";
import {
  decodeFrameAt,
  encodeFrame,
  encodeFrameBodyInto,
  type Frame,
  FrameKind,
  type PayloadDecoders,
} from "./protocol.ts";

const Mixed = protein("Mixed", {
  s: t.string(),
  n: t.i32(),
  u: t.u64(),
  f: t.f64(),
  b: t.bool(),
  bytes: t.bytes(),
  list: t.list(t.string()),
  opt: t.optional(t.string()),
  any: t.any(),
  // A name every plain object inherits: only an own property may be sent.
  constructor: t.string(),
});
const FIELDS = Object.keys(Mixed.schema.properties);
const One = protein("One", { greeting: t.string() });

/** Any value the general codec encodes, of any type (the right one or not). */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ minLength: 30, maxLength: 300 }),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 40 }),
  fc.array(fc.string({ maxLength: 6 }), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string()), { maxKeys: 4 }),
);

/** Objects with some declared fields (values of any type), maybe undefined, maybe extra keys. */
const mixedValue = fc.record(
  Object.fromEntries([
    ...FIELDS.map((f) => [f, anyValue] as const),
    ["extra", anyValue] as const,
    ["zzz", fc.string()] as const,
  ]),
  { requiredKeys: [] },
);

/** What the compiled encoder must send for `v`: its declared own fields that are defined, in order. */
function declared(v: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (Object.hasOwn(v, f) && v[f] !== undefined) out[f] = v[f];
  }
  return out;
}

Deno.test("a compiled encoder writes the general codec's bytes for the declared fields", () => {
  const enc = payloadEncoder(Mixed);
  const target = new Uint8Array(1 << 16);
  fc.assert(
    fc.property(mixedValue, fc.nat({ max: 64 }), (v, offset) => {
      const end = enc(v, target, offset, target.length);
      nodeAssert.deepEqual(target.subarray(offset, end), encode(declared(v, FIELDS)));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("a compiled encoder writes any other value as the general codec does", () => {
  const enc = payloadEncoder(One);
  const target = new Uint8Array(4096);
  fc.assert(
    fc.property(
      anyValue.filter((v) =>
        typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array
      ),
      (v) => {
        const end = enc(v, target, 0, target.length);
        nodeAssert.deepEqual(target.subarray(0, end), encode(v));
      },
    ),
  );
  // An instance of a class is not a plain record: all its own enumerable keys, as before.
  class Greeting {
    greeting = "hi";
    extra = 1;
  }
  const end = enc(new Greeting(), target, 0, target.length);
  nodeAssert.deepEqual(target.subarray(0, end), encode({ greeting: "hi", extra: 1 }));
});

Deno.test("an inherited property is not sent for a declared field of that name", () => {
  const enc = payloadEncoder(Mixed);
  const target = new Uint8Array(256);
  const end = enc({ s: "x" }, target, 0, target.length);
  nodeAssert.deepEqual(decode(target.subarray(0, end)), { s: "x" });
  const own = enc({ constructor: "mine" }, target, 0, target.length);
  nodeAssert.deepEqual(decode(target.subarray(0, own)), { constructor: "mine" });
});

Deno.test("a compiled encoder given too little room says so, and never writes past it", () => {
  const enc = payloadEncoder(Mixed);
  const target = new Uint8Array(4096);
  fc.assert(
    fc.property(mixedValue, fc.nat({ max: 400 }), (v, room) => {
      const want = encode(declared(v, FIELDS));
      target.fill(0xee);
      const end = enc(v, target, 16, 16 + room);
      if (end < 0) nodeAssert.ok(room < want.length * 3 + 16, `room ${room} was enough`);
      else nodeAssert.deepEqual(target.subarray(16, end), want);
      nodeAssert.ok(target.subarray(16 + room).every((b) => b === 0xee), "wrote past the room");
    }),
    { numRuns: 1000 },
  );
});

Deno.test("a compiled decoder reads what the general decoder reads, or leaves it to it", () => {
  const dec = payloadDecoder(Mixed);
  fc.assert(
    fc.property(mixedValue, fc.boolean(), (v, shuffle) => {
      // Maps as peers send them: every field in order (what the compiled encoder writes), or
      // any subset, order and extra keys (other implementations, older or newer schemas).
      const m = shuffle
        ? v
        : Object.fromEntries(FIELDS.map((f) => [f, Object.hasOwn(v, f) ? v[f] ?? null : null]));
      const bytes = new Uint8Array([0xaa, ...encode(m), 0xbb]);
      const got = dec(bytes, 1, bytes.length - 1);
      const want = decode(bytes.subarray(1, bytes.length - 1));
      if (!shuffle) nodeAssert.notEqual(got, NO_MATCH, "the encoder's own form was not read");
      if (got !== NO_MATCH) {
        nodeAssert.deepEqual(got, want);
        nodeAssert.deepEqual(Object.keys(got as object), Object.keys(want as object));
        nodeAssert.equal(cursor.at, bytes.length - 1);
      }
    }),
    { numRuns: 2000 },
  );
});

const payload = fc.oneof(mixedValue, anyValue);
const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    kind: fc.constant(FrameKind.REQUEST),
    id: fc.integer({ min: 1, max: 0xffffffff }),
    method: fc.constantFrom("mixed", "other", "ünïcode"),
    payload,
    timeoutMs: fc.nat(),
  }),
  fc.record({ kind: fc.constant(FrameKind.RESPONSE), id: fc.nat({ max: 0xffffffff }), payload }),
);
const decoders: PayloadDecoders = {
  request: (method) => method === "mixed" ? payloadDecoder(Mixed) : undefined,
  response: (id) => id % 2 === 0 ? payloadDecoder(Mixed) : undefined,
};

Deno.test("frames read with compiled decoders equal frames read without, malformed ones too", () => {
  fc.assert(
    fc.property(
      frame,
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 3 }),
      fc.nat(),
      (f, flips, cut) => {
        const body = encodeFrame(f).slice(4);
        // Sound bodies, and bodies with bytes changed or cut short.
        for (
          const bytes of [body, flipped(body, flips), body.subarray(0, cut % (body.length + 1))]
        ) {
          nodeAssert.deepEqual(
            decodeFrameAt(bytes, 0, bytes.length, decoders),
            decodeFrameAt(bytes, 0, bytes.length),
          );
        }
      },
    ),
    { numRuns: 2000 },
  );
});

function flipped(body: Uint8Array, flips: [number, number][]): Uint8Array {
  const out = body.slice();
  for (const [at, byte] of flips) if (out.length > 0) out[at % out.length] = byte;
  return out;
}

Deno.test("a frame with a compiled encoder is the same in place and with a length prefix", () => {
  const target = new Uint8Array(1 << 16);
  fc.assert(
    fc.property(mixedValue, fc.nat({ max: 0xffffffff }), (v, id) => {
      const f: Frame = { kind: FrameKind.RESPONSE, id, payload: v, encode: payloadEncoder(Mixed) };
      const end = encodeFrameBodyInto(f, target, 8, target.length - 8);
      nodeAssert.deepEqual(target.subarray(8, end), encodeFrame(f).subarray(4));
      nodeAssert.deepEqual(
        decodeFrameAt(target, 8, end, decoders),
        { kind: FrameKind.RESPONSE, id, payload: decode(encode(declared(v, FIELDS))) },
      );
    }),
    { numRuns: 1000 },
  );
});
