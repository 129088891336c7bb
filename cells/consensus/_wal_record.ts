/**
 * The record framing of the write-ahead log: `crc32c (u32) | length (u32) | type (u8) | payload`,
 * little-endian, the checksum covering length, type and payload. Private to the consensus cell.
 *
 * @module
 */

/** Bytes before a record's payload. */
export const HEADER_BYTES = 9;
/** Largest payload accepted when reading; a larger length is taken as corruption. */
export const MAX_PAYLOAD_BYTES = 1 << 30;

/** Record types. 0 is never written, so zero-filled space reads as corrupt. */
export const RecordType = {
  /** A batch of contiguous entries. */
  ENTRIES: 1,
  /** Term, vote and commit. */
  HARD_STATE: 2,
  /** Drop stored entries from an index on. */
  TRUNCATE: 3,
  /** Entries up to an index are covered by the snapshot file. */
  SNAPSHOT_MARK: 4,
  /** The whole content of a snapshot file. */
  SNAPSHOT: 5,
} as const;

const TABLE = (() => {
  // CRC-32C (Castagnoli), reflected polynomial 0x82f63b78; slicing-by-4 tables.
  const t = new Int32Array(4 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 4; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();

/**
 * CRC-32C of `bytes[start, end)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c } from "./_wal_record.ts";
 *
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const t = TABLE;
  let c = -1;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^
      t[c >>> 24]!;
  }
  for (; i < end; i++) c = (c >>> 8) ^ t[(c ^ bytes[i]!) & 0xff]!;
  return ~c >>> 0;
}

/**
 * A growable byte buffer that records are framed into.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecordBuffer, RecordType, scanRecords } from "./_wal_record.ts";
 *
 * const buffer = new RecordBuffer();
 * buffer.push(RecordType.TRUNCATE, new Uint8Array([7]));
 * const { records, end, error } = scanRecords(buffer.bytes());
 * assert.equal(records.length, 1);
 * assert.equal(end, buffer.length);
 * assert.equal(error, undefined);
 * ```
 */
export class RecordBuffer {
  #bytes: Uint8Array;
  #view: DataView;
  #length = 0;

  /** Creates an empty buffer with room for `capacity` bytes. */
  constructor(capacity = 64 * 1024) {
    this.#bytes = new Uint8Array(capacity);
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Bytes framed so far. */
  get length(): number {
    return this.#length;
  }

  /** Frames one record. */
  push(type: number, payload: Uint8Array): void {
    const start = this.#length;
    const end = start + HEADER_BYTES + payload.length;
    if (end > this.#bytes.length) {
      const bigger = new Uint8Array(Math.max(end, 2 * this.#bytes.length));
      bigger.set(this.#bytes.subarray(0, start));
      this.#bytes = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    this.#view.setUint32(start + 4, payload.length, true);
    this.#bytes[start + 8] = type;
    this.#bytes.set(payload, start + HEADER_BYTES);
    this.#view.setUint32(start, crc32c(this.#bytes, start + 4, end), true);
    this.#length = end;
  }

  /** A view of the framed bytes, valid until the next `push` or `clear`. */
  bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  /** Forgets the content, keeping the memory. */
  clear(): void {
    this.#length = 0;
  }
}

/** One record read back. */
export interface ScannedRecord {
  /** Its type. */
  type: number;
  /** Its payload (a view into the scanned bytes). */
  payload: Uint8Array;
  /** Offset of its header. */
  offset: number;
}

/** What {@linkcode scanRecords} found. */
export interface ScanResult {
  /** Every intact record before the first bad one. */
  records: ScannedRecord[];
  /** Offset just after the last intact record. */
  end: number;
  /** Why reading stopped before the end of `bytes`, if it did. */
  error?: string;
}

/**
 * Reads records until the end of `bytes` or the first torn or corrupt one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecordBuffer, scanRecords } from "./_wal_record.ts";
 *
 * const buffer = new RecordBuffer();
 * buffer.push(1, new Uint8Array([1, 2, 3]));
 * const torn = buffer.bytes().subarray(0, buffer.length - 1);
 * assert.equal(scanRecords(torn).records.length, 0);
 * assert.match(scanRecords(torn).error!, /torn/);
 * ```
 */
export function scanRecords(bytes: Uint8Array): ScanResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: ScannedRecord[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < HEADER_BYTES) {
      return { records, end: offset, error: `torn record header at offset ${offset}` };
    }
    const length = view.getUint32(offset + 4, true);
    const type = bytes[offset + 8]!;
    if (length > MAX_PAYLOAD_BYTES) {
      return { records, end: offset, error: `impossible length ${length} at offset ${offset}` };
    }
    const end = offset + HEADER_BYTES + length;
    if (end > bytes.length) {
      return { records, end: offset, error: `torn record at offset ${offset}` };
    }
    if (view.getUint32(offset, true) !== crc32c(bytes, offset + 4, end)) {
      return { records, end: offset, error: `checksum mismatch at offset ${offset}` };
    }
    if (type < RecordType.ENTRIES || type > RecordType.SNAPSHOT) {
      return { records, end: offset, error: `unknown record type ${type} at offset ${offset}` };
    }
    records.push({ type, payload: bytes.subarray(offset + HEADER_BYTES, end), offset });
    offset = end;
  }
  return { records, end: offset };
}
