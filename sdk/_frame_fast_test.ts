// The ring's fast paths (encode into a caller's buffer, decode in place) against the generic
// ones: the same bytes, the same frames, the same errors.
import fc from "fast-check";
import { decode, encode } from "./codec.ts";
import nodeAssert from "node:assert/strict";
import {
  decodeFrameAt,
  decodeFrameBody,
  encodeFrame,
  encodeFrameBodyInto,
  type Frame,
  FrameKind,
} from "./protocol.ts";

const value = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer(), fc.boolean())),
  fc.uint8Array({ maxLength: 40 }),
);
const id = fc.integer({ min: 1, max: 0xffffffff });
const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    kind: fc.constant(FrameKind.REQUEST),
    id,
    method: fc.string({ maxLength: 30 }),
    payload: value,
    timeoutMs: fc.nat(),
  }),
  fc.record({
    kind: fc.constant(FrameKind.REQUEST),
    id,
    method: fc.string(),
    payload: value,
    timeoutMs: fc.nat(),
    metadata: fc.dictionary(fc.string(), fc.string()),
  }),
  fc.record({ kind: fc.constant(FrameKind.RESPONSE), id, payload: value }),
  fc.record({
    kind: fc.constant(FrameKind.ERROR),
    id,
    code: fc.integer({ min: 0, max: 16 }),
    message: fc.string(),
  }),
  fc.record({ kind: fc.constant(FrameKind.PING), id }),
  fc.record({ kind: fc.constant(FrameKind.GOAWAY), lastId: id, message: fc.string() }),
);

Deno.test("frames encoded in place are the bytes of encodeFrame, and decode in place alike", () => {
  const target = new Uint8Array(4096);
  fc.assert(
    fc.property(frame, fc.nat({ max: 64 }), fc.nat({ max: 600 }), (f, offset, room) => {
      const body = encodeFrame(f).subarray(4);
      const end = encodeFrameBodyInto(f, target, offset, room);
      if (end < 0) nodeAssert.ok(room < body.length * 3 + 16, "room enough but not used");
      else {
        nodeAssert.ok(end - offset <= room);
        nodeAssert.deepEqual(target.subarray(offset, end), body);
        nodeAssert.deepEqual(decodeFrameAt(target, offset, end), decodeFrameBody(body));
      }
    }),
  );
});

Deno.test("any bytes decode in place exactly as decodeFrameBody decodes them", () => {
  const target = new Uint8Array(256);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 100 }), (bytes, offset) => {
      target.set(bytes, offset);
      const a = decodeFrameAt(target, offset, offset + bytes.length);
      const b = decodeFrameBody(bytes);
      nodeAssert.deepEqual(JSON.stringify(a, replacer), JSON.stringify(b, replacer));
    }),
    { numRuns: 2000 },
  );
  // Prefixes of valid frames: truncated input, in place and not.
  const body = encodeFrame({ kind: FrameKind.RESPONSE, id: 9, payload: { greeting: "hi" } })
    .subarray(4);
  for (let n = 0; n < body.length; n++) {
    target.set(body.subarray(0, n), 3);
    nodeAssert.deepEqual(
      JSON.stringify(decodeFrameAt(target, 3, 3 + n), replacer),
      JSON.stringify(decodeFrameBody(body.subarray(0, n)), replacer),
    );
  }
});

function replacer(_key: string, v: unknown): unknown {
  if (v instanceof Error) return { name: v.name, message: v.message };
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof Uint8Array) return [...v];
  return v;
}

Deno.test("short strings decode right through the string cache, lookalikes included", () => {
  const strings = fc.oneof(
    fc.string({ maxLength: 24 }),
    fc.string({ unit: "binary", maxLength: 24 }),
    // Same length, first, middle and last characters: same cache slot, other bytes.
    fc.tuple(fc.string({ minLength: 4, maxLength: 4 }), fc.nat({ max: 1 })).map(([s, i]) =>
      `ab${s}${i}cd`
    ),
  );
  fc.assert(
    fc.property(fc.array(strings, { maxLength: 20 }), (list) => {
      for (const s of list) nodeAssert.equal(decode(encode(s)), s);
      nodeAssert.deepEqual(decode(encode(list)), list);
    }),
    { numRuns: 500 },
  );
});
