import fc from "fast-check";
import nodeAssert from "node:assert/strict";
import {
  initSegment,
  RING_HEADER_BYTES,
  RING_MORE,
  RING_PAD,
  RING_PRESENT,
  RING_RESERVE,
  RingCorruptError,
  RingReader,
  RingWriter,
  segmentBytes,
} from "./ring.ts";
import { cString, loadRingLibrary } from "./lib.ts";
import { createSegment } from "./segment.ts";

const CAPACITY = 4096;

function segment(capacity = CAPACITY, start = 0): ArrayBuffer {
  const buffer = new ArrayBuffer(segmentBytes(capacity));
  initSegment(buffer, capacity);
  // Counters start anywhere (8-aligned): near 2^32 they wrap during the test.
  const u32 = new Uint32Array(buffer);
  u32[192 / 4] = u32[256 / 4] = start;
  return buffer;
}

const bytesOf = (len: number, seed: number) =>
  Uint8Array.from({ length: len }, (_, i) => (seed * 31 + i * 7) & 0xff);

type Op = { write: number } | { read: true };
const op = fc.oneof(
  { weight: 5, arbitrary: fc.nat({ max: CAPACITY / 4 }).map((n): Op => ({ write: n })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 16 }).map((n): Op => ({ write: n })) },
  { weight: 5, arbitrary: fc.constant<Op>({ read: true }) },
);

/** Where head and tail start: 8-aligned, near 2^32, so that the counters wrap during a test. */
const counterStart = fc.nat({ max: 2 ** 29 - 1 }).map((n) => (0x100000000 - n * 8) >>> 0);

Deno.test("the ring returns what was written, in order, across wrap-around", () => {
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 400 }),
      counterStart,
      (ops, start) => {
        const buffer = segment(CAPACITY, start);
        const writer = new RingWriter(buffer, 0);
        const reader = new RingReader(buffer, 0);
        const model: Uint8Array[] = [];
        let seed = 0;
        for (const o of ops) {
          if ("write" in o) {
            const bytes = bytesOf(o.write, ++seed);
            const free = writer.free();
            const ok = writer.write(bytes, o.write % 2 === 1);
            const need = (o.write + 11) & ~7;
            if (ok) model.push(bytes);
            // Refused only when it could not fit even at the start of the ring.
            else nodeAssert.ok(free < need * 2 || free < CAPACITY / 2, `refused with ${free} free`);
            nodeAssert.ok(writer.free() >= 0 && writer.free() <= CAPACITY);
          } else {
            const got = reader.next();
            const want = model.shift();
            if (want === undefined) nodeAssert.equal(got, null);
            else {
              nodeAssert.deepEqual(got, want);
              nodeAssert.equal(reader.more, want.length % 2 === 1);
            }
            reader.release();
          }
        }
        for (let got = reader.next(); got !== null; got = reader.next()) {
          nodeAssert.deepEqual(got, model.shift());
        }
        reader.release();
        nodeAssert.equal(model.length, 0);
        nodeAssert.equal(writer.free(), CAPACITY);
      },
    ),
  );
});

Deno.test("a full ring refuses a record, and takes it again once the reader releases", () => {
  const buffer = segment();
  const writer = new RingWriter(buffer, 1);
  const reader = new RingReader(buffer, 1);
  let n = 0;
  while (writer.write(new Uint8Array(4), false)) n++;
  nodeAssert.equal(n, CAPACITY / 8 - 1); // One slot stays free for the next record's header.
  nodeAssert.equal(writer.free(), RING_RESERVE);
  nodeAssert.ok(reader.next() !== null);
  nodeAssert.equal(writer.write(new Uint8Array(4), false), false); // Not released yet.
  reader.release();
  nodeAssert.equal(writer.write(new Uint8Array(4), false), true);
  nodeAssert.throws(() => writer.write(new Uint8Array(CAPACITY / 4 + 1), false), RangeError);
});

Deno.test("a corrupt record header is refused without reading outside the ring", () => {
  const refused = (header: number, at = 0) => {
    const buffer = segment();
    new RingWriter(buffer, 0).write(new Uint8Array(8), false);
    new Uint32Array(buffer)[(RING_HEADER_BYTES + at) / 4] = header;
    nodeAssert.throws(() => new RingReader(buffer, 0).next(), RingCorruptError);
  };
  fc.assert(
    fc.property(
      fc.oneof(
        // Longer than a record may be, or running past the end of the ring.
        fc.integer({ min: CAPACITY / 4 + 1, max: RING_PRESENT - 1 }),
        fc.integer({ min: CAPACITY / 4 + 1, max: RING_PRESENT - 1 }).map((n) => n + RING_MORE),
      ),
      fc.boolean(),
      (length, present) => refused((present ? length | RING_PRESENT : length) >>> 0),
    ),
  );
  // A header without the present bit.
  fc.assert(fc.property(fc.integer({ min: 1, max: CAPACITY / 4 }), (length) => refused(length)));
  // A record that fits the limit but not the space left before the end of the ring.
  const buffer = segment(CAPACITY, CAPACITY - 64);
  new Uint32Array(buffer)[(RING_HEADER_BYTES + CAPACITY - 64) / 4] = (200 | RING_PRESENT) >>> 0;
  nodeAssert.throws(() => new RingReader(buffer, 0).next(), RingCorruptError);
  // Padding at the start of the ring would loop forever.
  refused(RING_PAD);
  // Padding not followed by a record at the start.
  const padded = segment(CAPACITY, CAPACITY - 64);
  new Uint32Array(padded)[(RING_HEADER_BYTES + CAPACITY - 64) / 4] = RING_PAD;
  nodeAssert.throws(() => new RingReader(padded, 0).next(), RingCorruptError);
  const bad = segment();
  new Uint32Array(bad)[256 / 4] = CAPACITY * 3; // A head the reader could not have written.
  nodeAssert.throws(() => new RingWriter(bad, 0).free(), RingCorruptError);
});

Deno.test("the C and JavaScript rings agree on the layout", async () => {
  const lib = await loadRingLibrary();
  const shared = createSegment(lib, CAPACITY);
  shared.unlink();
  fc.assert(
    fc.property(fc.array(fc.nat({ max: CAPACITY / 4 }), { maxLength: 50 }), (lengths) => {
      const writer = new RingWriter(shared.buffer, 0);
      const reader = new RingReader(shared.buffer, 1);
      const out = new Uint8Array(CAPACITY);
      const flags = new Uint32Array(1);
      for (const [i, len] of lengths.entries()) {
        const bytes = bytesOf(len, i);
        // JavaScript writes, C reads.
        if (!writer.write(bytes, false)) continue;
        const n = lib.cell_ring_pop(
          shared.pointer,
          0,
          out,
          out.length,
          new Uint8Array(flags.buffer),
        );
        nodeAssert.equal(n, len);
        nodeAssert.deepEqual(out.subarray(0, n), bytes);
        // C writes, JavaScript reads.
        nodeAssert.equal(lib.cell_ring_push(shared.pointer, 1, bytes, len, 0x80000000), 0);
        nodeAssert.deepEqual(reader.next(), bytes);
        nodeAssert.equal(reader.more, true);
        reader.release();
      }
    }),
  );
  nodeAssert.equal(lib.cell_ring_shm_unlink(cString(shared.name)), -2); // Already unlinked.
});

Deno.test("records written in place (claim, commit) read back like written ones, across wrap-around", () => {
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 400 }),
      counterStart,
      (ops, start) => {
        const buffer = segment(CAPACITY, start);
        const writer = new RingWriter(buffer, 0);
        const reader = new RingReader(buffer, 0);
        const sent: Uint8Array[] = [];
        let seed = 0;
        for (const o of ops) {
          if ("write" in o) {
            const bytes = bytesOf(o.write, seed++);
            const at = writer.claim();
            if (at >= 0 && bytes.length <= writer.room) {
              writer.bytes.set(bytes, at);
              writer.commit(bytes.length);
              writer.publish();
              sent.push(bytes);
            } else if (writer.write(bytes, false)) {
              sent.push(bytes);
            }
          } else {
            const record = reader.next();
            if (record === null) nodeAssert.equal(sent.length, 0);
            else nodeAssert.deepEqual(record, sent.shift());
            reader.release();
          }
        }
        for (let r = reader.next(); r !== null; r = reader.next()) {
          nodeAssert.deepEqual(r, sent.shift());
        }
        nodeAssert.equal(sent.length, 0);
      },
    ),
  );
});

Deno.test("a batch stays invisible until publish(), then reads back whole, also when it wraps", () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: CAPACITY / 8 }), { minLength: 1, maxLength: 6 }),
      fc.nat({ max: CAPACITY / 8 - 1 }).map((n) => n * 8),
      (lengths, start) => {
        const buffer = segment(CAPACITY, start);
        const writer = new RingWriter(buffer, 0);
        const reader = new RingReader(buffer, 0);
        const sent = lengths.map((len, i) => bytesOf(len, i));
        for (const bytes of sent) nodeAssert.ok(writer.write(bytes, false, false));
        nodeAssert.equal(reader.ready(), false);
        nodeAssert.equal(reader.next(), null);
        writer.publish();
        for (const bytes of sent) nodeAssert.deepEqual(reader.next(), bytes);
        nodeAssert.equal(reader.next(), null);
      },
    ),
  );
});

Deno.test("readyInLine() is ready(), except false at a header that starts a cache line", () => {
  const seen = { lineStart: 0, inLine: 0 };
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 200 }), { minLength: 1, maxLength: 40 }),
      counterStart,
      fc.boolean(),
      (lengths, start, publishLast) => {
        const buffer = segment(CAPACITY, start);
        const head = new Uint32Array(buffer, 256, 1);
        const writer = new RingWriter(buffer, 0);
        const reader = new RingReader(buffer, 0);
        for (const [i, len] of lengths.entries()) {
          if (!writer.write(bytesOf(len, i), false, publishLast || i < lengths.length - 1)) break;
        }
        for (;;) {
          reader.release(); // Publishes the reader's position as its head.
          const startsLine = (head[0]! & (CAPACITY - 1) & 63) === 0;
          const ready = reader.ready();
          nodeAssert.equal(reader.readyInLine(), ready && !startsLine);
          if (ready) seen[startsLine ? "lineStart" : "inLine"]++;
          if (reader.nextOffset() < 0) break;
        }
      },
    ),
  );
  // Both cases were met with records waiting.
  nodeAssert.ok(seen.lineStart > 0 && seen.inLine > 0, JSON.stringify(seen));
});

type StagedOp =
  | { write: number; publish: boolean }
  | { claim: number }
  | { publish: true }
  | { read: true };
const stagedOp = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ write: fc.nat({ max: CAPACITY / 4 }), publish: fc.boolean() }).map(
      (o): StagedOp => o,
    ),
  },
  {
    weight: 4,
    arbitrary: fc.integer({ min: 0, max: 40 }).map((n): StagedOp => ({ write: n, publish: false })),
  },
  { weight: 1, arbitrary: fc.nat({ max: 200 }).map((n): StagedOp => ({ claim: n })) },
  { weight: 2, arbitrary: fc.constant<StagedOp>({ publish: true }) },
  { weight: 4, arbitrary: fc.constant<StagedOp>({ read: true }) },
);

Deno.test("a staging writer refuses a record when the ring is full, and loses nothing", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 200 }), counterStart, (len, start) => {
      const buffer = segment(CAPACITY, start);
      const u8 = new Uint8Array(buffer);
      const writer = new RingWriter(
        buffer,
        0,
        (offset, source, length) => u8.set(source.subarray(0, length), offset),
      );
      const reader = new RingReader(buffer, 0);
      // Unpublished, so every record but the first of each stage takes the staged path; the
      // stage (8 KiB) is larger than the ring: the ring's room must stop the writer.
      const sent: Uint8Array[] = [];
      for (let seed = 1;; seed++) {
        const bytes = bytesOf(len, seed);
        if (!writer.write(bytes, false, false)) break;
        sent.push(bytes);
        nodeAssert.ok(sent.length * ((len + 11) & ~7) <= CAPACITY, "wrote past the ring's room");
      }
      nodeAssert.ok(sent.length > 0);
      writer.publish();
      for (const bytes of sent) nodeAssert.deepEqual(reader.next(), bytes);
      nodeAssert.equal(reader.next(), null);
      reader.release();
      nodeAssert.ok(writer.write(bytesOf(len, 0), false, false)); // Room again.
    }),
  );
});

Deno.test("a writer that stages its batches shows each batch whole at publish(), in order, across wrap-around", () => {
  const copies = { calls: 0 };
  fc.assert(
    fc.property(fc.array(stagedOp, { maxLength: 300 }), counterStart, (ops, start) => {
      const buffer = segment(CAPACITY, start);
      const u8 = new Uint8Array(buffer);
      // Stale bytes everywhere, as after many laps, but the zero slot where the writer starts.
      u8.fill(0xa5, RING_HEADER_BYTES, RING_HEADER_BYTES + CAPACITY);
      u8.fill(
        0,
        RING_HEADER_BYTES + (start & (CAPACITY - 1)),
        RING_HEADER_BYTES + (start & (CAPACITY - 1)) + 4,
      );
      const writer = new RingWriter(buffer, 0, (offset, source, length) => {
        nodeAssert.ok(
          offset >= RING_HEADER_BYTES && offset + length <= RING_HEADER_BYTES + CAPACITY,
        );
        copies.calls++;
        u8.set(source.subarray(0, length), offset);
      });
      const reader = new RingReader(buffer, 0);
      const visible: Uint8Array[] = [], pending: Uint8Array[] = [];
      let seed = 0;
      const drain = () => {
        for (let got = reader.next(); got !== null; got = reader.next()) {
          nodeAssert.deepEqual(got, visible.shift());
        }
        nodeAssert.equal(visible.length, 0);
        reader.release();
      };
      for (const o of ops) {
        if ("read" in o) {
          const got = reader.next();
          nodeAssert.deepEqual(got, visible.shift() ?? null);
          reader.release();
        } else if ("claim" in o) {
          const at = writer.claim();
          if (at < 0 || writer.room < o.claim) continue;
          const bytes = bytesOf(o.claim, ++seed);
          writer.bytes.set(bytes, at);
          writer.commit(bytes.length);
          pending.push(bytes);
        } else if ("write" in o) {
          const bytes = bytesOf(o.write, ++seed);
          if (!writer.write(bytes, false, o.publish)) continue;
          pending.push(bytes);
          if (o.publish) visible.push(...pending.splice(0));
        } else {
          writer.publish();
          visible.push(...pending.splice(0));
        }
        // Nothing of an unpublished batch shows.
        if (pending.length > 0 && visible.length === 0) nodeAssert.equal(reader.ready(), false);
      }
      writer.publish();
      visible.push(...pending.splice(0));
      drain();
      nodeAssert.equal(writer.free(), CAPACITY);
    }),
  );
  nodeAssert.ok(copies.calls > 0, "no batch was staged");
});

Deno.test("a writer staging through cell_ring_copy reads back batch by batch; copies outside the segment are refused", async () => {
  const lib = await loadRingLibrary();
  const seg = createSegment(lib, CAPACITY);
  try {
    const rc = lib.cell_ring_copy(
      seg.pointer,
      seg.buffer.byteLength,
      seg.buffer.byteLength - 4,
      new Uint8Array(8),
      8,
    );
    nodeAssert.equal(rc, -22, "a copy past the segment is refused with -EINVAL");
    const writer = new RingWriter(seg.buffer, 0, (offset, source, length) => {
      nodeAssert.equal(
        lib.cell_ring_copy(seg.pointer, seg.buffer.byteLength, offset, source, length),
        0,
      );
    });
    const reader = new RingReader(seg.buffer, 0);
    const sent = Array.from({ length: 300 }, (_, i) => bytesOf(i % 70, i));
    for (let round = 0; round < 3; round++) {
      for (const bytes of sent.slice(0, 60)) nodeAssert.ok(writer.write(bytes, false, false));
      nodeAssert.equal(reader.next(), null);
      writer.publish();
      for (const bytes of sent.slice(0, 60)) nodeAssert.deepEqual(reader.next(), bytes);
      reader.release();
    }
  } finally {
    seg.unlink();
  }
});
