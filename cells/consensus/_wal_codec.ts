/**
 * Payloads of the write-ahead log's records (MessagePack) and the replay of a directory's
 * records into the state a member loads. Private to the consensus cell.
 *
 * @module
 */
import { decode, Encoder } from "@msgpack/msgpack";
import type { Entry, EntryType, HardState, Snapshot } from "./types.ts";
import { RecordType, type ScannedRecord } from "./_wal_record.ts";

const ENTRY_TYPES: readonly EntryType[] = ["normal", "config", "noop"];
const ENTRY_CODES: Record<EntryType, number> = { normal: 0, config: 1, noop: 2 };

const encoder = new Encoder();

/** Payload of an `ENTRIES` record: `[[index, term, type, data], ...]`. */
export function encodeEntries(entries: readonly Entry[]): Uint8Array {
  return encoder.encodeSharedRef(
    entries.map((e) => [e.index, e.term, ENTRY_CODES[e.type], e.data]),
  );
}

/** Payload of a `HARD_STATE` record: `[term, vote, commit]`. */
export function encodeHardState(state: HardState): Uint8Array {
  return encoder.encodeSharedRef([state.term, state.vote, state.commit]);
}

/** Payload of a `TRUNCATE` (`[from]`) or `SNAPSHOT_MARK` (`[index, term]`) record. */
export function encodeNumbers(...numbers: number[]): Uint8Array {
  return encoder.encodeSharedRef(numbers);
}

/** Payload of a snapshot file's one `SNAPSHOT` record: `[index, term, members, data]`. */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { meta, data } = snapshot;
  return encoder.encode([meta.index, meta.term, meta.members, data]);
}

function array(payload: Uint8Array, what: string): unknown[] {
  const value = decode(payload);
  if (!Array.isArray(value)) throw new TypeError(`${what} is not an array`);
  return value;
}

function integer(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new TypeError(`${what} is not a non-negative integer: ${JSON.stringify(value)}`);
  }
  return value as number;
}

function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} is not binary`);
  // Copied, so that entries do not pin the whole segment they were read from.
  return value.slice();
}

/** Decodes a snapshot file's record. */
export function decodeSnapshot(payload: Uint8Array): Snapshot {
  const [index, term, members, data] = array(payload, "snapshot");
  if (!Array.isArray(members) || !members.every((m) => typeof m === "string")) {
    throw new TypeError("snapshot members are not strings");
  }
  return {
    meta: {
      index: integer(index, "snapshot index"),
      term: integer(term, "snapshot term"),
      members,
    },
    data: bytes(data, "snapshot data"),
  };
}

/** What replaying the log's records yields. */
export class Replay {
  /** Latest hard state. */
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  /** Contiguous entries, possibly starting after 1 (earlier ones compacted away). */
  entries: Entry[] = [];
  /** Highest snapshot index marked in the log. */
  marked = 0;
  /** Highest entry index in the records applied since it was last reset. */
  maxIndex = 0;

  /** Applies one record; throws on a record that decodes badly. */
  apply(record: ScannedRecord): void {
    const fields = array(record.payload, `record at offset ${record.offset}`);
    switch (record.type) {
      case RecordType.ENTRIES: {
        const batch = fields.map((f, i): Entry => {
          const [index, term, type, data] = Array.isArray(f) ? f : [];
          const kind = ENTRY_TYPES[integer(type, `entry ${i} type`)];
          if (kind === undefined) throw new TypeError(`entry ${i} has unknown type ${type}`);
          return {
            index: integer(index, `entry ${i} index`),
            term: integer(term, `entry ${i} term`),
            type: kind,
            data: bytes(data, `entry ${i} data`),
          };
        });
        this.#append(batch);
        break;
      }
      case RecordType.HARD_STATE: {
        const [term, vote, commit] = fields;
        if (vote !== null && typeof vote !== "string") throw new TypeError("vote is not a string");
        this.hardState = { term: integer(term, "term"), vote, commit: integer(commit, "commit") };
        break;
      }
      case RecordType.TRUNCATE:
        this.#truncate(integer(fields[0], "truncate index"));
        break;
      case RecordType.SNAPSHOT_MARK: {
        const index = integer(fields[0], "snapshot mark index");
        this.entries = this.entries.filter((e) => e.index > index);
        this.marked = Math.max(this.marked, index);
        break;
      }
      default:
        throw new TypeError(`record type ${record.type} does not belong in a log segment`);
    }
  }

  #append(batch: Entry[]): void {
    if (batch.length === 0) return;
    const first = batch[0]!.index;
    this.maxIndex = Math.max(this.maxIndex, batch[batch.length - 1]!.index);
    const base = this.entries[0]?.index;
    // A gap (or a batch before everything held) restarts the log: the skipped part is covered
    // by a snapshot, or was in segments compacted away. load() checks the result is contiguous.
    if (base === undefined || first < base || first > base + this.entries.length) {
      this.entries = batch;
    } else {
      this.entries.length = first - base;
      for (const e of batch) this.entries.push(e);
    }
  }

  #truncate(from: number): void {
    const base = this.entries[0]?.index;
    if (base !== undefined) {
      this.entries.length = Math.max(0, Math.min(this.entries.length, from - base));
    }
  }
}
