/**
 * The ring logic in JavaScript, over a segment mapped into this process: the hot path of the
 * transport runs here with loads and stores on the mapping, without any FFI call.
 * The layout is the one of `include/cell_ring.h` (see docs/ring.md): head and tail are u32
 * counters that only count up (modulo 2^32), each on its own cache line; a record is a
 * little-endian u32 header (length, {@linkcode RING_PRESENT}, plus {@linkcode RING_MORE} when the
 * message continues in the next record) and its bytes, padded to 8; {@linkcode RING_PAD} skips
 * to the start.
 *
 * The reader polls the header at its position, not the writer's tail: the writer zeroes the
 * header slot after a record before it stores that record's header, so a non-zero header is a
 * record written in this lap. One cache line then carries both the news and a small record, where
 * polling the tail costs a second line per message. A batch is published by holding back its
 * first header until the others are in place, then storing it with a release store. The tail is
 * still published, for readers that use it (the C library) and for the writer's own bookkeeping.
 *
 * Each side keeps its own counter privately and only publishes it: a hostile peer that
 * scribbles over the segment can make the reader see garbage, never read outside the ring.
 *
 * @module
 */
import { storeRelease } from "./_order.ts";

/** Bytes before the first ring. */
export const RING_HEADER_BYTES = 512;
/** Magic number at offset 0 of a segment ("CRNG"). */
export const RING_MAGIC = 0x474e5243;
/** Version of the segment layout. */
export const RING_VERSION = 2;
/** Header flag: the message continues in the next record. */
export const RING_MORE = 0x80000000;
/** Header flag set on every record: a zero header is a slot not yet written. */
export const RING_PRESENT = 0x40000000;
/** Header bits of the record length. */
const LENGTH_MASK = 0x3fffffff;
/**
 * Bytes a writer keeps free past a record: the next record's header slot, zeroed before the
 * record is made visible (8, to keep records 8-aligned).
 */
export const RING_RESERVE = 8;
/** Header value: skip to the start of the ring. */
export const RING_PAD = 0xffffffff;
/** Byte offset of the futex word that side `side` (0 client, 1 server) sleeps on. */
export const sleepOffset = (side: number): number => 64 + 64 * side;
/** Byte offset of side `side`'s closed flag. */
export const closedOffset = (side: number): number => 64 + 64 * side + 4;
const tailOffset = (ring: number) => 192 + 128 * ring;
const headOffset = (ring: number) => 256 + 128 * ring;

/** Bytes of a segment holding two rings of `capacity` bytes. */
export function segmentBytes(capacity: number): number {
  return RING_HEADER_BYTES + 2 * capacity;
}

/** Largest record body in a ring of `capacity` bytes. */
export function maxRecord(capacity: number): number {
  return capacity / 4;
}

/** True for a capacity the layout allows: a power of two from 4 KiB to 1 GiB. */
export function validCapacity(capacity: number): boolean {
  return Number.isInteger(capacity) && capacity >= 4096 && capacity <= 2 ** 30 &&
    (capacity & (capacity - 1)) === 0;
}

/**
 * The segment or a record in it is not what the layout allows: the peer is broken or hostile.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSegment, RingCorruptError } from "@cell/ring";
 * let error: unknown;
 * try {
 *   checkSegment(new ArrayBuffer(4608));
 * } catch (e) {
 *   error = e;
 * }
 * assert.ok(error instanceof RingCorruptError);
 * ```
 */
export class RingCorruptError extends Error {
  override name = "RingCorruptError";
}

/**
 * Writes the header of a zeroed segment of two rings of `capacity` bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initSegment, RingReader, RingWriter, segmentBytes } from "@cell/ring";
 * const buffer = new ArrayBuffer(segmentBytes(4096));
 * initSegment(buffer, 4096);
 * const writer = new RingWriter(buffer, 0), reader = new RingReader(buffer, 0);
 * assert.ok(writer.write(new Uint8Array([1, 2, 3]), false));
 * assert.ok(reader.next()?.length === 3);
 * ```
 */
export function initSegment(buffer: ArrayBuffer, capacity: number, creator = 0): void {
  if (!validCapacity(capacity)) throw new RangeError(`Invalid ring capacity ${capacity}`);
  const u32 = new Uint32Array(buffer, 0, RING_HEADER_BYTES / 4);
  u32[1] = RING_VERSION;
  u32[2] = capacity;
  u32[3] = creator;
  Atomics.store(u32, 0, RING_MAGIC);
}

/** The capacity of a segment's rings, after checking its header; throws `RingCorruptError`. */
export function checkSegment(buffer: ArrayBuffer): number {
  const u32 = new Uint32Array(buffer, 0, RING_HEADER_BYTES / 4);
  const capacity = u32[2]!;
  if (
    Atomics.load(u32, 0) !== RING_MAGIC || u32[1] !== RING_VERSION || !validCapacity(capacity) ||
    segmentBytes(capacity) !== buffer.byteLength
  ) {
    throw new RingCorruptError(
      `Segment header is not a version ${RING_VERSION} ring segment of that size`,
    );
  }
  return capacity;
}

/**
 * Copies `length` bytes of `source` to byte `offset` of the segment: how a {@linkcode RingWriter}
 * given one moves a staged batch into the ring (`cell_ring_copy` through FFI, in a channel).
 */
export type SegmentCopy = (offset: number, source: Uint8Array, length: number) => void;

/** Records up to this many bytes (header and padding included) are staged. */
const STAGE_RECORD = 1024;
/** Bytes of a writer's staging buffer. */
const STAGE_BYTES = 8192;

const header = (length: number, more: boolean): number =>
  more ? (length | RING_PRESENT | RING_MORE) >>> 0 : (length | RING_PRESENT);

abstract class RingEnd {
  protected readonly u32: Uint32Array;
  protected readonly u8: Uint8Array;
  protected readonly data: number;
  protected readonly headIndex: number;
  protected readonly tailIndex: number;
  /** Bytes of data in the ring. */
  readonly capacity: number;
  /** Largest record body. */
  readonly maxRecord: number;

  constructor(buffer: ArrayBuffer, ring: 0 | 1) {
    this.capacity = checkSegment(buffer);
    this.maxRecord = maxRecord(this.capacity);
    this.u32 = new Uint32Array(buffer);
    this.u8 = new Uint8Array(buffer);
    this.data = RING_HEADER_BYTES + this.capacity * ring;
    this.headIndex = headOffset(ring) / 4;
    this.tailIndex = tailOffset(ring) / 4;
  }
}

/**
 * The producing end of one ring. Only one writer may exist per ring.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initSegment, RingWriter, segmentBytes } from "@cell/ring";
 * const buffer = new ArrayBuffer(segmentBytes(4096));
 * initSegment(buffer, 4096);
 * const writer = new RingWriter(buffer, 0);
 * for (let i = 0; i < 10; i++) writer.write(new Uint8Array(32), false, false);
 * writer.publish(); // One store for the batch.
 * assert.ok(writer.free() === 4096 - 10 * 40);
 * ```
 */
export class RingWriter extends RingEnd {
  #tail: number;
  /** The reader's head when last loaded: reloaded only when it seems too full. */
  #head: number;
  /**
   * Index (in u32) of the first header slot written since the last publication, or -1: its
   * value waits in {@linkcode RingWriter.#firstHeader} while the later ones are stored plainly,
   * so that {@linkcode RingWriter.publish} shows the whole batch with one release store.
   */
  #firstAt = -1;
  #firstHeader = 0;
  readonly #copy: SegmentCopy | undefined;
  /** Records of an unpublished batch, laid out as in the ring from {@linkcode RingWriter.#stageAt}. */
  readonly #stage: Uint8Array;
  readonly #stage32: Uint32Array;
  #stageAt = 0;
  #staged = 0;

  /**
   * With `copy`, small records written unpublished (`write(bytes, more, false)`) are staged in
   * private memory and copied into the ring by one `copy` call when the batch is published (or
   * the stage fills): one C copy keeps many cache-line transfers to the reader's core in flight,
   * where per-record copies from JavaScript wait on them in turn (docs/ring.md).
   */
  constructor(buffer: ArrayBuffer, ring: 0 | 1, copy?: SegmentCopy) {
    super(buffer, ring);
    this.#tail = Atomics.load(this.u32, this.tailIndex);
    this.#head = this.#tail;
    this.#copy = copy;
    this.#stage = new Uint8Array(copy === undefined ? 0 : STAGE_BYTES);
    this.#stage32 = new Uint32Array(this.#stage.buffer);
  }

  #loadHead(): number {
    const head = Atomics.load(this.u32, this.headIndex);
    const used = (this.#tail - head) >>> 0;
    if (used > this.capacity) {
      throw new RingCorruptError(`Ring head is ${used} bytes behind the tail, over the capacity`);
    }
    this.#head = head;
    return used;
  }

  /** Bytes free for records now; throws `RingCorruptError` when the reader's head is impossible. */
  free(): number {
    return this.capacity - this.#loadHead();
  }

  /**
   * Appends `bytes` as one record (flagged {@linkcode RING_MORE} when `more`). Returns false,
   * writing nothing, when the ring has no room for it now; throws a `RangeError` for a body
   * over {@linkcode RingWriter.maxRecord}. With `publish` false the record stays invisible to
   * the reader until {@linkcode RingWriter.publish}: a batch then costs one release store.
   */
  write(bytes: Uint8Array, more: boolean, publish = true): boolean {
    const len = bytes.length;
    if (len > this.maxRecord) throw new RangeError(`Record of ${len} bytes exceeds the maximum`);
    const capacity = this.capacity;
    const tail = this.#tail;
    const pos = tail & (capacity - 1);
    const need = (len + 11) & ~7;
    if (!publish) {
      // The next record of a staged batch: it follows the stage, fits it and the ring.
      const at = this.#staged;
      if (
        at > 0 && this.#stageAt + at === pos && at + need <= STAGE_BYTES &&
        need <= STAGE_RECORD && pos + need <= capacity &&
        ((tail - this.#head) >>> 0) + need + RING_RESERVE <= capacity
      ) {
        this.#append(bytes, at, need, header(len, more));
        this.#tail = (tail + need) >>> 0;
        return true;
      }
    }
    const skip = pos + need > capacity ? capacity - pos : 0;
    if (((tail - this.#head) >>> 0) + skip + need + RING_RESERVE > capacity) {
      if (this.#loadHead() + skip + need + RING_RESERVE > capacity) return false;
    }
    if (!publish && skip === 0 && need <= STAGE_RECORD && this.#copy !== undefined) {
      this.#stageRecord(bytes, pos, need, header(len, more));
      this.#tail = (tail + need) >>> 0;
      return true;
    }
    this.#flush();
    const start = skip === 0 ? pos : 0;
    this.u32[(this.data + ((start + need) & (capacity - 1))) >>> 2] = 0;
    this.u8.set(bytes, this.data + start + 4);
    if (skip === 0) this.#setHeader((this.data + pos) >>> 2, header(len, more));
    else {
      // The padding is the slot the reader waits at: it is set after the record at the start.
      this.u32[this.data >>> 2] = header(len, more);
      this.#setHeader((this.data + pos) >>> 2, RING_PAD);
    }
    this.#tail = (tail + skip + need) >>> 0;
    if (publish) this.publish();
    return true;
  }

  /** Appends a record at ring position `pos` to the stage (after copying out a stage it does not follow). */
  #stageRecord(bytes: Uint8Array, pos: number, need: number, value: number): void {
    let at = this.#staged;
    if (at > 0 && (this.#stageAt + at !== pos || at + need > STAGE_BYTES)) {
      this.#flush();
      at = 0;
    }
    if (at === 0) this.#stageAt = pos;
    if (this.#firstAt < 0) {
      // The first header of the batch: zero in the copy, stored by publish().
      this.#firstAt = (this.data + pos) >>> 2;
      this.#firstHeader = value;
      value = 0;
    }
    this.#append(bytes, at, need, value);
  }

  /** Appends a record with header `value` at `at` in the stage. */
  #append(bytes: Uint8Array, at: number, need: number, value: number): void {
    this.#stage32[at >>> 2] = value;
    this.#stage.set(bytes, at + 4);
    this.#staged = at + need;
  }

  /**
   * Copies the staged records into the ring, after zeroing the header slot that follows them:
   * still invisible, behind the batch's held-back first header.
   */
  #flush(): void {
    const staged = this.#staged;
    if (staged === 0) return;
    this.#staged = 0;
    this.u32[(this.data + ((this.#stageAt + staged) & (this.capacity - 1))) >>> 2] = 0;
    this.#copy!(this.data + this.#stageAt, this.#stage, staged);
  }

  /** Sets a header slot: held back when it is the first of a batch, stored plainly after it. */
  #setHeader(index: number, value: number): void {
    if (this.#firstAt < 0) {
      this.#firstAt = index;
      this.#firstHeader = value;
    } else {
      this.u32[index] = value;
    }
  }

  /**
   * Where the body of the next record can be written in place, in
   * {@linkcode RingWriter.bytes}: returns its offset and sets {@linkcode RingWriter.room} to the
   * bytes available there (contiguous, at most {@linkcode RingWriter.maxRecord}), or returns -1
   * when there is no room before the end of the ring (then use {@linkcode RingWriter.write},
   * which wraps). Nothing is written until {@linkcode RingWriter.commit}.
   */
  claim(): number {
    this.#flush();
    const capacity = this.capacity;
    const tail = this.#tail;
    const pos = tail & (capacity - 1);
    const contiguous = capacity - pos;
    let used = (tail - this.#head) >>> 0;
    if (used + contiguous + RING_RESERVE > capacity) used = this.#loadHead();
    const fits = Math.min(capacity - used - RING_RESERVE, contiguous) - 4;
    if (fits < 0) return -1;
    this.room = Math.min(fits, this.maxRecord);
    return this.data + pos + 4;
  }

  /** Bytes available at the offset {@linkcode RingWriter.claim} returned. */
  room = 0;

  /**
   * Appends the record of `length` bytes (at most {@linkcode RingWriter.room}) written at the
   * offset {@linkcode RingWriter.claim} returned, invisible to the reader until
   * {@linkcode RingWriter.publish}.
   */
  commit(length: number, more = false): void {
    if (length > this.room || length < 0) throw new RangeError(`Record of ${length} bytes`);
    const capacity = this.capacity;
    const tail = this.#tail;
    const pos = tail & (capacity - 1);
    const need = (length + 11) & ~7;
    this.u32[(this.data + ((pos + need) & (capacity - 1))) >>> 2] = 0;
    this.#setHeader((this.data + pos) >>> 2, header(length, more));
    this.#tail = (tail + need) >>> 0;
    this.room = 0;
  }

  /** The whole segment, for {@linkcode RingWriter.claim}. */
  get bytes(): Uint8Array {
    return this.u8;
  }

  /**
   * Makes every record written so far visible to the reader: stores the batch's first header
   * (the later ones are already in place behind it), then the tail, for readers that follow
   * the tail (the C library). Then zeroes the first word of the next cache line when it is
   * free, to own that line before a later record needs it.
   */
  publish(): void {
    this.#flush();
    if (this.#firstAt >= 0) {
      storeRelease(this.u32, this.#firstAt, this.#firstHeader);
      this.#firstAt = -1;
    }
    storeRelease(this.u32, this.tailIndex, this.#tail);
    // Take the next cache line now (it is free space: zero is what a reader would find there
    // anyway), while the reader works on what was just published: the record after next may
    // need its header slot zeroed there, and that store, waiting for the line, would hold up
    // the record's own header behind it (stores become visible in order).
    const capacity = this.capacity;
    const tail = this.#tail;
    if (((tail - this.#head) >>> 0) + 128 <= capacity) {
      this.u32[(this.data + ((((tail & (capacity - 1)) + 64) & (capacity - 1)) & ~63)) >>> 2] = 0;
    }
  }
}

/**
 * The consuming end of one ring. Only one reader may exist per ring.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initSegment, RingReader, RingWriter, segmentBytes } from "@cell/ring";
 * const buffer = new ArrayBuffer(segmentBytes(4096));
 * initSegment(buffer, 4096);
 * new RingWriter(buffer, 1).write(new Uint8Array([7]), false);
 * const reader = new RingReader(buffer, 1);
 * const at = reader.nextOffset();
 * assert.ok(reader.bytes[at] === 7 && reader.length === 1);
 * reader.release();
 * ```
 */
export class RingReader extends RingEnd {
  #head: number;
  #read: number;
  /** True when the last record returned by {@linkcode RingReader.next} has more to follow. */
  more = false;
  /** Length of the record last returned by {@linkcode RingReader.nextOffset}. */
  length = 0;

  constructor(buffer: ArrayBuffer, ring: 0 | 1) {
    super(buffer, ring);
    this.#head = this.#read = Atomics.load(this.u32, this.headIndex);
  }

  /** True when a record is waiting. */
  ready(): boolean {
    return Atomics.load(this.u32, (this.data + (this.#read & (this.capacity - 1))) >>> 2) !== 0;
  }

  /**
   * Like {@linkcode RingReader.ready}, but false without looking when the next header starts a
   * cache line this reader has not read yet (a record ends in the line it is in otherwise).
   * Looking there would wait for that line, still in the writer's cache, ~70-500 ns on the
   * two-core VMs this was measured on: callers on a latency path ask this instead, and look
   * later.
   */
  readyInLine(): boolean {
    const pos = this.#read & (this.capacity - 1);
    return (pos & 63) !== 0 && Atomics.load(this.u32, (this.data + pos) >>> 2) !== 0;
  }

  /**
   * The next record's bytes, a view into the ring valid until {@linkcode RingReader.release},
   * or `null` when the ring is empty. Throws `RingCorruptError` for a header that the layout
   * does not allow; nothing outside the ring is read then.
   */
  next(): Uint8Array | null {
    const at = this.nextOffset();
    return at < 0 ? null : this.u8.subarray(at, at + this.length);
  }

  /**
   * Like {@linkcode RingReader.next} without allocating a view: the offset of the next
   * record's bytes in {@linkcode RingReader.bytes} (its length in
   * {@linkcode RingReader.length}), or -1 when the ring is empty.
   */
  nextOffset(): number {
    const capacity = this.capacity;
    let pos = this.#read & (capacity - 1);
    let header = Atomics.load(this.u32, (this.data + pos) >>> 2);
    if (header === 0) return -1;
    if (header === RING_PAD) {
      if (pos === 0) throw new RingCorruptError("Ring padding at the start of the ring");
      this.#read = (this.#read + capacity - pos) >>> 0;
      pos = 0;
      header = Atomics.load(this.u32, this.data >>> 2);
      if (header === 0 || header === RING_PAD) {
        throw new RingCorruptError("Ring padding is not followed by a record at the start");
      }
    }
    const len = header & LENGTH_MASK;
    const need = (len + 11) & ~7;
    if ((header & RING_PRESENT) === 0 || len > this.maxRecord || pos + need > capacity) {
      throw new RingCorruptError(
        `Ring record header 0x${header.toString(16)} at offset ${pos} is not a record that fits`,
      );
    }
    this.more = header >= RING_MORE;
    this.length = len;
    this.#read = (this.#read + need) >>> 0;
    return this.data + pos + 4;
  }

  /**
   * Byte offset in the segment of the header slot this reader waits at: where the next record
   * (or the padding before it) appears, for a sleeper to watch (`cell_ring_wait`).
   */
  get waitOffset(): number {
    return this.data + (this.#read & (this.capacity - 1));
  }

  /** The whole segment, for {@linkcode RingReader.nextOffset}. */
  get bytes(): Uint8Array {
    return this.u8;
  }

  /** Gives the space of every record returned so far back to the writer. */
  release(): void {
    if (this.#head === this.#read) return;
    this.#head = this.#read;
    storeRelease(this.u32, this.headIndex, this.#head);
  }
}
