/**
 * A file-based {@linkcode LogStorage}: a segmented write-ahead log of checksummed records plus a
 * snapshot file, in one directory that a lock file reserves to one process.
 *
 * Layout of the directory:
 *
 * - `LOCK`: holds an exclusive `flock` while open, and the holder's pid.
 * - `<20-digit sequence>.wal`: log segments, replayed in order. A record is
 *   `crc32c | length | type | MessagePack payload`; types are entries, hard state, truncation
 *   (a follower overwriting a suffix) and snapshot marks. A new segment starts at the first
 *   sync after the current one passes `segmentBytes`, and begins with the current hard state.
 * - `snapshot`: the latest snapshot, one record, replaced atomically (temp file, fsync,
 *   rename, directory fsync). Segments that hold only entries it covers are then deleted.
 *
 * On load, a torn or corrupt record at the tail of the last segment is what a crash before a
 * sync leaves: it and everything after it are cut off. The same in an earlier segment, which
 * was synced before the next one began, is data loss and fails the load.
 *
 * @module
 */
import { join } from "node:path";
import { CellError } from "@cell/sdk";
import type { Entry, HardState, LoadedState, LogStorage, Snapshot } from "./types.ts";
import { RecordBuffer, RecordType, scanRecords } from "./_wal_record.ts";
import {
  decodeSnapshot,
  encodeEntries,
  encodeHardState,
  encodeNumbers,
  encodeSnapshot,
  Replay,
} from "./_wal_codec.ts";
import { lockDir, syncDir } from "./_wal_files.ts";

/** Options of {@linkcode openWal}. */
export interface WalOptions {
  /** Start a new segment once the current one is this large. @default {67108864} */
  segmentBytes?: number;
}

interface Segment {
  seq: number;
  path: string;
  maxIndex: number;
}

const SNAPSHOT_FILE = "snapshot";
const SEGMENT = /^(\d{20})\.wal$/;

/**
 * Opens (creating it if needed) the write-ahead log in `dir` and locks it: a second open of the
 * same directory, from this or another process, fails with `FAILED_PRECONDITION` naming the pid
 * that holds it. Call `load()` once before writing.
 *
 * `append` and `setHardState` only encode into memory; `sync()` writes everything pending with
 * one write and one `fdatasync`, so callers batch (group commit) by appending many times and
 * syncing once. A failed write or sync poisons the log: every later call rethrows, and the
 * directory must be reopened (which recovers it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openWal } from "./wal.ts";
 *
 * const dir = await Deno.makeTempDir({ prefix: "wal-" });
 * const wal = await openWal(dir);
 * await wal.load();
 * const data = new TextEncoder().encode("put x 1");
 * wal.append([{ index: 1, term: 1, type: "normal", data }]);
 * wal.setHardState({ term: 1, vote: "n1", commit: 1 });
 * await wal.sync();
 * await wal.close();
 *
 * const again = await openWal(dir);
 * const { hardState, entries } = await again.load();
 * assert.deepEqual(hardState, { term: 1, vote: "n1", commit: 1 });
 * assert.deepEqual(entries.map((e) => e.index), [1]);
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openWal(dir: string, options: WalOptions = {}): Promise<LogStorage> {
  const segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
  if (!(segmentBytes > 0)) {
    throw new RangeError(`Cannot open the WAL: segmentBytes must be > 0, got ${segmentBytes}`);
  }
  await Deno.mkdir(dir, { recursive: true });
  const lock = await lockDir(dir);
  return new Wal(dir, segmentBytes, lock);
}

class Wal implements LogStorage {
  #dir: string;
  #segmentBytes: number;
  #lock: Deno.FsFile;
  #segments: Segment[] = [];
  #file: Deno.FsFile | undefined;
  #size = 0;
  #pending = new RecordBuffer();
  #spare = new RecordBuffer();
  #pendingMax = 0;
  #syncing: Promise<void> = Promise.resolve();
  #failed: unknown;
  #loaded = false;
  #closed = false;
  // What the log holds, enough to check appends and snapshots: the term of each entry after
  // the snapshot, from index #base + 1.
  #base = 0;
  #baseTerm = 0;
  #terms: number[] = [];
  #hardState: HardState = { term: 0, vote: null, commit: 0 };

  constructor(dir: string, segmentBytes: number, lock: Deno.FsFile) {
    this.#dir = dir;
    this.#segmentBytes = segmentBytes;
    this.#lock = lock;
  }

  async load(): Promise<LoadedState> {
    if (this.#loaded) throw new Error("Cannot load the WAL twice: load() once, right after open");
    this.#check();
    this.#loaded = true;
    await Deno.remove(join(this.#dir, `${SNAPSHOT_FILE}.tmp`)).catch(() => {});
    const snapshot = await this.#readSnapshot();
    for await (const item of Deno.readDir(this.#dir)) {
      const match = SEGMENT.exec(item.name);
      if (match) {
        this.#segments.push({
          seq: Number(match[1]),
          path: join(this.#dir, item.name),
          maxIndex: 0,
        });
      }
    }
    this.#segments.sort((a, b) => a.seq - b.seq);
    const replay = new Replay();
    for (const [i, segment] of this.#segments.entries()) {
      const bytes = await Deno.readFile(segment.path);
      const scan = scanRecords(bytes);
      const last = i === this.#segments.length - 1;
      if (scan.error !== undefined && !last) {
        throw new CellError(
          "DATA_LOSS",
          `WAL segment "${segment.path}" is corrupt (${scan.error}) but is not the last one, so ` +
            `it was fully synced: restore the directory from a replica or a backup`,
        );
      }
      replay.maxIndex = 0;
      for (const record of scan.records) {
        try {
          replay.apply(record);
        } catch (e) {
          throw new CellError("DATA_LOSS", `WAL segment "${segment.path}" has a bad record: ${e}`);
        }
      }
      segment.maxIndex = replay.maxIndex;
      if (last) {
        if (scan.end < bytes.length) await Deno.truncate(segment.path, scan.end);
        this.#size = scan.end;
      }
    }
    let entries = replay.entries;
    const base = snapshot?.meta.index ?? 0;
    if (snapshot !== null && replay.marked < base) {
      // The snapshot became durable but its mark did not: apply Raft's rule here.
      const at = entries.find((e) => e.index === base);
      if (at === undefined || at.term !== snapshot.meta.term) entries = [];
    }
    entries = entries.filter((e) => e.index > base);
    if (entries.length > 0 && entries[0]!.index !== base + 1) {
      throw new CellError(
        "DATA_LOSS",
        `WAL in "${this.#dir}" starts at entry ${entries[0]!.index} but the snapshot covers only ` +
          `up to ${base}: entries are missing; restore the directory from a replica`,
      );
    }
    this.#base = base;
    this.#baseTerm = snapshot?.meta.term ?? 0;
    this.#terms = entries.map((e) => e.term);
    this.#hardState = replay.hardState;
    if (snapshot !== null && this.#hardState.commit < base) {
      this.#hardState = { ...this.#hardState, commit: base };
    }
    if (this.#segments.length === 0) await this.#newSegment(1);
    else {
      this.#file = await Deno.open(this.#segments.at(-1)!.path, { write: true });
      await this.#file.seek(this.#size, Deno.SeekMode.Start);
    }
    return { hardState: { ...this.#hardState }, snapshot, entries };
  }

  append(entries: Entry[]): void {
    this.#writable();
    const kept = entries.filter((e) => e.index > this.#base);
    if (kept.length === 0) return;
    const first = kept[0]!.index;
    const last = this.#base + this.#terms.length;
    if (first > last + 1) {
      throw new RangeError(`Append at ${first} leaves a gap after ${last}: append in order`);
    }
    kept.forEach((e, i) => {
      if (e.index !== first + i) {
        throw new RangeError(
          `Cannot append entry ${e.index} after ${first + i - 1}: not contiguous`,
        );
      }
    });
    if (first <= last) {
      this.#pending.push(RecordType.TRUNCATE, encodeNumbers(first));
      this.#terms.length = first - this.#base - 1;
    }
    this.#pending.push(RecordType.ENTRIES, encodeEntries(kept));
    for (const e of kept) this.#terms.push(e.term);
    this.#pendingMax = Math.max(this.#pendingMax, kept.at(-1)!.index);
  }

  setHardState(state: HardState): void {
    this.#writable();
    this.#hardState = { term: state.term, vote: state.vote, commit: state.commit };
    this.#pending.push(RecordType.HARD_STATE, encodeHardState(this.#hardState));
  }

  sync(): Promise<void> {
    try {
      this.#writable();
    } catch (e) {
      return Promise.reject(e);
    }
    // Chained: one flush at a time, each writing whatever was appended before it started.
    this.#syncing = this.#syncing.then(() => this.#flush());
    return this.#syncing;
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.#writable();
    const { index, term } = snapshot.meta;
    if (index <= this.#base) return;
    const tmp = join(this.#dir, `${SNAPSHOT_FILE}.tmp`);
    const record = new RecordBuffer(snapshot.data.length + 1024);
    record.push(RecordType.SNAPSHOT, encodeSnapshot(snapshot));
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      await writeAll(file, record.bytes());
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, join(this.#dir, SNAPSHOT_FILE));
    await syncDir(this.#dir);
    // Raft's rule: keep the entries after the snapshot only if the log agrees with it at `index`.
    const at = index - this.#base - 1;
    if (this.#terms[at] === term) this.#terms = this.#terms.slice(at + 1);
    else {
      this.#pending.push(RecordType.TRUNCATE, encodeNumbers(0));
      this.#terms = [];
    }
    this.#base = index;
    this.#baseTerm = term;
    this.#pending.push(RecordType.SNAPSHOT_MARK, encodeNumbers(index, term));
    if (this.#hardState.commit < index) this.setHardState({ ...this.#hardState, commit: index });
    await this.sync();
    // Only a prefix: replaying a later segment without an earlier one could resurrect entries.
    while (this.#segments.length > 1 && this.#segments[0]!.maxIndex <= index) {
      await Deno.remove(this.#segments.shift()!.path);
    }
    await syncDir(this.#dir);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#loaded && this.#failed === undefined) await this.sync();
    } finally {
      this.#closed = true;
      this.#file?.close();
      this.#lock.close();
    }
  }

  async #flush(): Promise<void> {
    this.#check();
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    const max = this.#pendingMax;
    this.#pending = this.#spare;
    this.#pendingMax = 0;
    try {
      if (this.#size >= this.#segmentBytes) {
        this.#file!.close();
        await this.#newSegment(this.#segments.at(-1)!.seq + 1);
      }
      // Written synchronously, into the page cache: each async file call is a trip to the
      // blocking thread pool (a duplicated descriptor, two thread handoffs), and only the
      // fdatasync is worth one.
      writeAllSync(this.#file!, pending.bytes());
      await this.#file!.syncData();
      this.#size += pending.length;
      const segment = this.#segments.at(-1)!;
      segment.maxIndex = Math.max(segment.maxIndex, max);
    } catch (e) {
      // After a failed write or fsync the file's content is unknown: never write after it.
      this.#failed = e;
      throw e;
    } finally {
      pending.clear();
      this.#spare = pending;
    }
  }

  // Creates segment `seq`, starting with the hard state so that older segments can go.
  async #newSegment(seq: number): Promise<void> {
    const path = join(this.#dir, `${String(seq).padStart(20, "0")}.wal`);
    this.#file = await Deno.open(path, { write: true, create: true, truncate: true });
    this.#segments.push({ seq, path, maxIndex: 0 });
    this.#size = 0;
    const head = new RecordBuffer(256);
    head.push(RecordType.HARD_STATE, encodeHardState(this.#hardState));
    if (this.#base > 0) {
      head.push(RecordType.SNAPSHOT_MARK, encodeNumbers(this.#base, this.#baseTerm));
    }
    await writeAll(this.#file, head.bytes());
    await this.#file.syncData();
    this.#size = head.length;
    await syncDir(this.#dir);
  }

  async #readSnapshot(): Promise<Snapshot | null> {
    const path = join(this.#dir, SNAPSHOT_FILE);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    const scan = scanRecords(bytes);
    const record = scan.records[0];
    try {
      if (scan.error !== undefined || record?.type !== RecordType.SNAPSHOT) {
        throw new Error(scan.error ?? "no snapshot record");
      }
      return decodeSnapshot(record.payload);
    } catch (e) {
      throw new CellError(
        "DATA_LOSS",
        `Snapshot "${path}" is corrupt (${e instanceof Error ? e.message : e}): it was written ` +
          `atomically, so the disk lost data; restore the directory from a replica`,
      );
    }
  }

  #check(): void {
    if (this.#failed !== undefined) {
      throw new CellError("DATA_LOSS", `WAL in "${this.#dir}" failed earlier: reopen it`, {
        cause: this.#failed,
      });
    }
    if (this.#closed) throw new CellError("FAILED_PRECONDITION", "WAL is closed: reopen it");
  }

  #writable(): void {
    this.#check();
    if (!this.#loaded) throw new CellError("FAILED_PRECONDITION", "Call load() before writing");
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await file.write(bytes.subarray(offset));
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let offset = 0; offset < bytes.length;) offset += file.writeSync(bytes.subarray(offset));
}
