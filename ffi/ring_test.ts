import fc from "fast-check";
import nodeAssert from "node:assert/strict";
import {
  initSegment,
  RING_HEADER_BYTES,
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

Deno.test("the ring returns what was written, in order, across wrap-around", () => {
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 400 }),
      fc.nat({ max: 2 ** 29 - 1 }).map((n) => (0x100000000 - n * 8) >>> 0),
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
  nodeAssert.equal(n, CAPACITY / 8);
  nodeAssert.equal(writer.free(), 0);
  nodeAssert.ok(reader.next() !== null);
  nodeAssert.equal(writer.write(new Uint8Array(4), false), false); // Not released yet.
  reader.release();
  nodeAssert.equal(writer.write(new Uint8Array(4), false), true);
  nodeAssert.throws(() => writer.write(new Uint8Array(CAPACITY / 4 + 1), false), RangeError);
});

Deno.test("a corrupt record length or tail is refused without reading outside the ring", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ min: 13, max: 0x7fffffff }), // Past the 16 bytes written.
        fc.integer({ min: CAPACITY / 4 + 1, max: CAPACITY * 2 }),
      ),
      (length) => {
        const buffer = segment();
        const writer = new RingWriter(buffer, 0);
        writer.write(new Uint8Array(8), false);
        new Uint32Array(buffer)[RING_HEADER_BYTES / 4] = length; // The header of that record.
        nodeAssert.throws(() => new RingReader(buffer, 0).next(), RingCorruptError);
      },
    ),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0xffffffff }), (tail) => {
      fc.pre(tail % 8 !== 0 || tail > CAPACITY);
      const buffer = segment();
      new Uint32Array(buffer)[192 / 4] = tail;
      nodeAssert.throws(() => new RingReader(buffer, 0).next(), RingCorruptError);
    }),
  );
  const buffer = segment();
  new Uint32Array(buffer)[256 / 4] = CAPACITY * 3; // A head the reader could not have written.
  nodeAssert.throws(() => new RingWriter(buffer, 0).free(), RingCorruptError);
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
      fc.nat({ max: 2 ** 29 - 1 }).map((n) => (0x100000000 - n * 8) >>> 0),
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
