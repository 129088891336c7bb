import assert from "node:assert/strict";
import fc from "fast-check";
import { encode } from "./codec.ts";
import { CellError } from "./errors.ts";
import {
  decodeFrameBody,
  DEFAULT_MAX_FRAME,
  encodeFrame,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameKind,
  FrameReader,
  isMalformed,
} from "./protocol.ts";

const RUNS = { numRuns: 300 };
const INITIAL_CAPACITY = 64 * 1024;

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const text = fc.string({ unit: "binary", maxLength: 30 });
const key = text;

/** Payloads: JSON-like values with binary and integers of every width, without `-0`. */
const { payload } = fc.letrec((tie) => ({
  payload: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom(null, true, false),
    fc.maxSafeInteger(),
    u32,
    fc.double({ noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
    text,
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie("payload"), { maxLength: 5 }),
    fc.dictionary(key, tie("payload"), { maxKeys: 5, noNullPrototype: true }),
  ),
}));
const details = payload.filter((d) => d !== null);

/** Leaves out the optional property when the generator chose none. */
const withOptional = <T extends object>(frame: T, name: string, value: unknown): T =>
  value === undefined ? frame : { ...frame, [name]: value };

const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    version: u32,
    info: fc.record(
      { cell: text, schema_hash: text, max_frame: u32, peer: text, agent: text },
      { requiredKeys: [], noNullPrototype: true },
    ),
  }).map(({ version, info }) => ({ kind: FrameKind.HELLO, version, info })),
  fc.tuple(
    fc.integer({ min: 1, max: 0xffffffff }),
    text,
    payload,
    u32,
    fc.option(fc.dictionary(key, text, { maxKeys: 4, noNullPrototype: true }), { nil: undefined }),
  ).map(([id, method, payload, timeoutMs, metadata]) =>
    withOptional({ kind: FrameKind.REQUEST, id, method, payload, timeoutMs }, "metadata", metadata)
  ),
  fc.tuple(u32, payload).map(([id, payload]) => ({ kind: FrameKind.RESPONSE, id, payload })),
  fc.tuple(u32, u32, text, fc.option(details, { nil: undefined })).map(
    ([id, code, message, d]) =>
      withOptional({ kind: FrameKind.ERROR, id, code, message }, "details", d),
  ),
  fc.tuple(fc.constantFrom(FrameKind.CANCEL, FrameKind.PING, FrameKind.PONG), u32).map((
    [kind, id],
  ) => ({ kind, id })),
  fc.tuple(u32, text).map(([lastId, message]) => ({ kind: FrameKind.GOAWAY, lastId, message })),
);

/** `value` with binary as plain `Uint8Array`s, for strict comparisons. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function framed(body: Uint8Array): Uint8Array {
  const prefix = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(prefix.buffer).setUint32(0, body.length);
  return concat([prefix, body]);
}

/**
 * Feeds `stream` to `reader` in chunks of the given sizes (cycled) and hands each body to
 * `onBody` as soon as it is complete, as a transport does.
 */
function feed(
  reader: FrameReader,
  stream: Uint8Array,
  sizes: number[],
  onBody: (body: Uint8Array) => void,
): void {
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const size = Math.min(sizes[i % sizes.length]!, stream.length - at);
    const region = reader.writable(size);
    assert.ok(region.length >= size, `writable(${size}) offered only ${region.length} bytes`);
    region.set(stream.subarray(at, at + size));
    reader.commit(size);
    at += size;
    for (let body = reader.next(); body !== null; body = reader.next()) onBody(body);
  }
}

const tooLarge = (e: unknown) => e instanceof CellError && e.code === "RESOURCE_EXHAUSTED";

/** What decodeFrameBody may return: a frame, null for an unknown kind, or a MalformedFrame. */
function assertOutcome(result: ReturnType<typeof decodeFrameBody>): void {
  if (result === null) return;
  if (isMalformed(result)) {
    assert.ok(result.error instanceof CellError);
    assert.equal(result.error.code, "INVALID_ARGUMENT");
    if (result.id !== undefined) assert.ok(result.id >= 1 && result.id <= 0xffffffff);
    return;
  }
  assert.ok(Object.values(FrameKind).includes(result.kind), `kind ${result.kind}`);
}

Deno.test("frames survive encodeFrame, a FrameReader fed in random chunks, and decodeFrameBody", () => {
  const sizes = fc.array(
    fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4096 })),
    {
      minLength: 1,
      maxLength: 10,
    },
  );
  fc.assert(
    fc.property(fc.array(frame, { minLength: 1, maxLength: 12 }), sizes, (frames, chunks) => {
      const reader = new FrameReader();
      const got: unknown[] = [];
      feed(reader, concat(frames.map((f) => encodeFrame(f))), chunks, (body) => {
        got.push(decodeFrameBody(body));
      });
      assert.deepStrictEqual(plain(got), frames);
      assert.equal(reader.buffered, 0);
      assert.equal(reader.next(), null);
    }),
    RUNS,
  );
});

Deno.test("decodeFrameBody returns a frame, null or a MalformedFrame for any bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (body) => {
      assertOutcome(decodeFrameBody(body));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("decodeFrameBody returns a frame, null or a MalformedFrame for any array body", () => {
  const anyKind = fc.oneof(
    fc.integer({ min: 0, max: 9 }),
    fc.integer({ min: -5, max: 300 }),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    payload,
  );
  const field = fc.oneof(u32, fc.integer({ min: -3, max: 3 }), payload);
  fc.assert(
    fc.property(anyKind, fc.array(field, { maxLength: 6 }), (kind, fields) => {
      assertOutcome(decodeFrameBody(encode([kind, ...fields])));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("a FrameReader fed any byte stream yields bodies or throws RESOURCE_EXHAUSTED", () => {
  const piece = fc.oneof(
    frame.map((f) => encodeFrame(f)),
    fc.uint8Array({ maxLength: 40 }).map(framed),
    fc.uint8Array({ maxLength: 40 }),
  );
  const maxFrame = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constant(DEFAULT_MAX_FRAME));
  fc.assert(
    fc.property(
      fc.array(piece, { maxLength: 8 }),
      maxFrame,
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 5 }),
      (pieces, limit, chunks) => {
        const reader = new FrameReader(limit);
        try {
          feed(reader, concat(pieces), chunks, (body) => {
            assert.ok(body.length <= limit);
            assertOutcome(decodeFrameBody(body));
          });
        } catch (e) {
          assert.ok(tooLarge(e), `threw ${String(e)}`);
        }
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("FrameReader.next throws RESOURCE_EXHAUSTED as soon as a prefix announces too much", () => {
  const length = fc.oneof(u32, fc.integer({ min: 0, max: (1 << 24) + 16 }));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 << 24 }), length, (limit, announced) => {
      const reader = new FrameReader(limit);
      const prefix = reader.writable(FRAME_HEADER_BYTES);
      new DataView(prefix.buffer, prefix.byteOffset).setUint32(0, announced);
      reader.commit(FRAME_HEADER_BYTES);
      if (announced > limit) {
        assert.throws(() => reader.next(), tooLarge);
      } else if (announced === 0) {
        assert.equal(reader.next()?.length, 0);
      } else {
        assert.equal(reader.next(), null);
        assert.equal(reader.missing(), announced);
      }
    }),
    RUNS,
  );
});

Deno.test("encodeFrame throws RESOURCE_EXHAUSTED before writing a body over maxFrame", () => {
  fc.assert(
    fc.property(frame, (f) => {
      const size = encodeFrame(f).length - FRAME_HEADER_BYTES;
      assert.equal(encodeFrame(f, size).length, FRAME_HEADER_BYTES + size);
      assert.throws(() => encodeFrame(f, size - 1), tooLarge);
    }),
    RUNS,
  );
});

Deno.test("FrameReader.missing tells how many bytes the pending frame still needs", () => {
  fc.assert(
    fc.property(frame, fc.nat(), (f, cut) => {
      const bytes = encodeFrame(f);
      const have = cut % bytes.length;
      const reader = new FrameReader();
      reader.writable(have).set(bytes.subarray(0, have));
      reader.commit(have);
      assert.equal(reader.next(), null);
      assert.equal(reader.missing(), have < FRAME_HEADER_BYTES ? 0 : bytes.length - have);
      assert.equal(reader.buffered, have);
    }),
    RUNS,
  );
});

Deno.test("a FrameReader grows past 64 KiB for large frames and keeps every byte", () => {
  const big = fc.uint8Array({ minLength: INITIAL_CAPACITY, maxLength: 300 * 1024 });
  const blob = fc.tuple(fc.nat(), big).map(([seed, b]) => b.map((x, i) => (x + seed + i) & 0xff));
  fc.assert(
    fc.property(
      fc.array(fc.oneof(blob, fc.uint8Array({ maxLength: 100 })), { minLength: 1, maxLength: 4 }),
      fc.array(fc.integer({ min: 1, max: 128 * 1024 }), { minLength: 1, maxLength: 4 }),
      (blobs, chunks) => {
        const frames: Frame[] = blobs.map((b, i) => ({
          kind: FrameKind.RESPONSE,
          id: i + 1,
          payload: b,
        }));
        const reader = new FrameReader();
        const got: unknown[] = [];
        feed(reader, concat(frames.map((f) => encodeFrame(f))), chunks, (body) => {
          got.push(decodeFrameBody(body));
        });
        assert.deepStrictEqual(plain(got), frames);
      },
    ),
    { numRuns: 30 },
  );
});

Deno.test("a FrameReader driven by missing() reads a 1 MiB frame into one region", () => {
  const payload = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
  const bytes = encodeFrame({ kind: FrameKind.RESPONSE, id: 1, payload });
  const reader = new FrameReader();
  let at = 0;
  let reads = 0;
  let body: Uint8Array | null = null;
  while (body === null) {
    const region = reader.writable(Math.max(reader.missing(), 16 * 1024));
    const n = Math.min(region.length, bytes.length - at);
    region.set(bytes.subarray(at, at + n));
    reader.commit(n);
    at += n;
    reads++;
    body = reader.next();
  }
  assert.equal(reads, 2, "the first read learns the length, the second completes the frame");
  const frame = decodeFrameBody(body);
  assert.ok(frame !== null && !isMalformed(frame) && frame.kind === FrameKind.RESPONSE);
  assert.deepStrictEqual(plain(frame.payload), payload);
});

Deno.test("FrameReader.writable compacts the buffer instead of growing when the live bytes fit", () => {
  const reader = new FrameReader();
  assert.equal(reader.writable(0).length, INITIAL_CAPACITY);
  const first = encodeFrame({ kind: FrameKind.RESPONSE, id: 1, payload: new Uint8Array(30000) });
  const second = encodeFrame({ kind: FrameKind.RESPONSE, id: 2, payload: new Uint8Array(40000) });
  const head = 1000;
  reader.writable(first.length + head).set(concat([first, second.subarray(0, head)]));
  reader.commit(first.length + head);
  assert.equal(reader.next()?.length, first.length - FRAME_HEADER_BYTES);
  assert.equal(reader.next(), null);

  // 1000 live bytes sit past offset 30000: 40000 more only fit once they move to the front.
  const region = reader.writable(second.length - head);
  assert.equal(region.length, INITIAL_CAPACITY - head, "compacted, not grown");
  region.set(second.subarray(head));
  reader.commit(second.length - head);
  const body = reader.next();
  assert.ok(body !== null);
  assert.deepStrictEqual(plain(decodeFrameBody(body)), {
    kind: FrameKind.RESPONSE,
    id: 2,
    payload: new Uint8Array(40000),
  });
  assert.equal(reader.writable(0).length, INITIAL_CAPACITY, "drained: the whole buffer is free");
});

Deno.test("FrameReader.writable at least doubles the buffer when it must grow", () => {
  const reader = new FrameReader();
  assert.equal(reader.writable(INITIAL_CAPACITY + 1).length, 2 * INITIAL_CAPACITY);
  assert.equal(reader.writable(5 * INITIAL_CAPACITY).length, 5 * INITIAL_CAPACITY);
});

Deno.test("FrameReader.writable always offers at least the bytes asked for", () => {
  const pings = Array.from(
    { length: 20_000 },
    (_, id) => encodeFrame({ kind: FrameKind.PING, id }),
  );
  const stream = concat(pings);
  const step = fc.tuple(
    fc.integer({ min: 0, max: 200 * 1024 }),
    fc.double({ min: 0, max: 1, noNaN: true }),
  );
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
      const reader = new FrameReader();
      let at = 0;
      let id = 0;
      let consumed = 0;
      for (const [min, share] of steps) {
        const region = reader.writable(min);
        assert.ok(region.length >= min);
        const n = Math.min(Math.floor(region.length * share), stream.length - at);
        region.set(stream.subarray(at, at + n));
        reader.commit(n);
        at += n;
        for (let body = reader.next(); body !== null; body = reader.next()) {
          assert.deepStrictEqual(decodeFrameBody(body), { kind: FrameKind.PING, id });
          consumed += pings[id++]!.length;
        }
      }
      assert.equal(reader.buffered, at - consumed);
    }),
    { numRuns: 200 },
  );
});

Deno.test("a zero-length body is handed over and decodes as malformed", () => {
  const reader = new FrameReader();
  reader.writable(FRAME_HEADER_BYTES).set([0, 0, 0, 0]);
  reader.commit(FRAME_HEADER_BYTES);
  const body = reader.next();
  assert.equal(body?.length, 0);
  assert.ok(isMalformed(decodeFrameBody(body!)));
});
