/**
 * The in-memory Raft log of one member: a snapshot base, the entries after it, and the bookkeeping
 * of what has been handed out for persistence and for application.
 *
 * @module
 */
import type { Entry, LoadedState, MemberId, Snapshot } from "./types.ts";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** Encodes a member list as the payload of a `config` entry. */
export function encodeMembers(members: readonly MemberId[]): Uint8Array {
  return ENCODER.encode(JSON.stringify(members));
}

/** Decodes the payload of a `config` entry. */
export function decodeMembers(data: Uint8Array): MemberId[] {
  const parsed: unknown = JSON.parse(DECODER.decode(data));
  if (!Array.isArray(parsed) || !parsed.every((m) => typeof m === "string")) {
    throw new TypeError(`Config entry holds ${JSON.stringify(parsed)}: expected a member list`);
  }
  return parsed;
}

/** Entries, commit and apply positions, and what is still to be persisted. */
export class RaftLog {
  #snapshot: Snapshot | null;
  #offsetIndex: number;
  #offsetTerm: number;
  #baseMembers: MemberId[];
  #entries: Entry[];
  #configIndexes: number[] = [];
  /** Highest index known committed. */
  committed: number;
  /** Highest index handed out for application. */
  applied: number;
  /** Highest index known durable on this member. */
  stable: number;
  #unstableFrom: number;
  #pendingSnapshot: Snapshot | null = null;

  constructor(loaded: LoadedState, initialMembers: readonly MemberId[]) {
    this.#snapshot = loaded.snapshot;
    this.#offsetIndex = loaded.snapshot?.meta.index ?? 0;
    this.#offsetTerm = loaded.snapshot?.meta.term ?? 0;
    this.#baseMembers = [...(loaded.snapshot?.meta.members ?? initialMembers)];
    this.#entries = loaded.entries.filter((e) => e.index > this.#offsetIndex);
    this.#entries.forEach((e, i) => {
      if (e.index !== this.#offsetIndex + 1 + i) {
        throw new RangeError(
          `Loaded entry ${e.index} is out of place: expected contiguous entries`,
        );
      }
      if (e.type === "config") this.#configIndexes.push(e.index);
    });
    this.committed = Math.min(
      Math.max(loaded.hardState.commit, this.#offsetIndex),
      this.lastIndex,
    );
    this.applied = this.#offsetIndex;
    this.stable = this.lastIndex;
    this.#unstableFrom = this.lastIndex + 1;
  }

  /** First index still held in memory. */
  get firstIndex(): number {
    return this.#offsetIndex + 1;
  }

  /** Index of the last entry (or of the snapshot when there is none). */
  get lastIndex(): number {
    return this.#offsetIndex + this.#entries.length;
  }

  /** Term of the last entry. */
  get lastTerm(): number {
    return this.term(this.lastIndex) ?? 0;
  }

  /** The latest snapshot, to send to lagging followers. */
  get snapshot(): Snapshot | null {
    return this.#snapshot;
  }

  /** Term of the entry at `index`; `undefined` when compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.#offsetIndex) return this.#offsetTerm;
    if (index < this.#offsetIndex || index > this.lastIndex) return undefined;
    return this.#entries[index - this.#offsetIndex - 1]!.term;
  }

  /** Whether the entry at `index` has term `term`. */
  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Entries from `lo` to `hi` inclusive, at most `max` of them; `lo` must be ≥ `firstIndex`. */
  slice(lo: number, hi: number, max = Infinity): Entry[] {
    const start = lo - this.#offsetIndex - 1;
    const end = Math.min(hi - this.#offsetIndex, start + max);
    return this.#entries.slice(start, end);
  }

  /** Whether a candidate's log (`lastIndex`, `lastTerm`) is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  /** Voting members as of `index` (config entries take effect when appended). */
  membersAt(index: number): MemberId[] {
    for (let i = this.#configIndexes.length - 1; i >= 0; i--) {
      const at = this.#configIndexes[i]!;
      if (at <= index) return decodeMembers(this.#entries[at - this.#offsetIndex - 1]!.data);
    }
    return [...this.#baseMembers];
  }

  /** Index of the latest config entry, or the snapshot index when none is held. */
  get lastConfigIndex(): number {
    return this.#configIndexes.at(-1) ?? this.#offsetIndex;
  }

  /** Appends entries, dropping any stored entries from `entries[0].index` on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first <= this.#offsetIndex || first > this.lastIndex + 1) {
      throw new RangeError(`Cannot append at ${first}: the log spans ${this.firstIndex}..`);
    }
    if (first <= this.lastIndex) {
      if (first <= this.committed) throw new Error(`Refusing to truncate committed entry ${first}`);
      this.#entries.length = first - this.#offsetIndex - 1;
      while ((this.#configIndexes.at(-1) ?? 0) >= first) this.#configIndexes.pop();
      this.stable = Math.min(this.stable, first - 1);
    }
    this.#unstableFrom = Math.min(this.#unstableFrom, first);
    for (const e of entries) {
      this.#entries.push(e);
      if (e.type === "config") this.#configIndexes.push(e.index);
    }
  }

  /**
   * A follower's AppendEntries: if our log holds (`prevIndex`, `prevTerm`), appends what is new
   * (truncating a conflicting suffix) and returns the index of the last new entry; else `-1`.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNew = prevIndex + entries.length;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.index <= this.#offsetIndex) continue;
      if (!this.matchTerm(e.index, e.term)) {
        this.append(entries.slice(i));
        break;
      }
    }
    return lastNew;
  }

  /** Where a leader should retry after our rejection of `prevIndex` (fast backtracking). */
  conflictHint(prevIndex: number): { hintIndex: number; hintTerm: number } {
    if (prevIndex > this.lastIndex) return { hintIndex: this.lastIndex + 1, hintTerm: 0 };
    const term = this.term(prevIndex) ?? 0;
    let index = prevIndex;
    while (index - 1 > this.#offsetIndex && this.term(index - 1) === term) index--;
    return { hintIndex: index, hintTerm: term };
  }

  /** Last index of our entries of `term`, or `-1` when we hold none of that term. */
  lastIndexOfTerm(term: number): number {
    for (let i = this.lastIndex; i > this.#offsetIndex; i--) {
      const t = this.term(i)!;
      if (t === term) return i;
      if (t < term) return -1;
    }
    return -1;
  }

  /** Raises the commit index (never lowers it). */
  commitTo(index: number): void {
    if (index > this.committed) this.committed = Math.min(index, this.lastIndex);
  }

  /**
   * Installs a snapshot received from the leader. Keeps the entries after it when our log holds
   * its last entry, else drops the whole log (the rule storage applies too).
   */
  restore(snapshot: Snapshot): void {
    const { index, term, members } = snapshot.meta;
    if (this.matchTerm(index, term)) {
      this.#compactTo(snapshot);
    } else {
      this.#entries = [];
      this.#configIndexes = [];
      this.#offsetIndex = index;
      this.#offsetTerm = term;
      this.#baseMembers = [...members];
      this.#snapshot = snapshot;
      this.stable = Math.min(this.stable, index);
    }
    this.#unstableFrom = Math.max(this.#unstableFrom, index + 1);
    this.committed = Math.max(this.committed, index);
    this.applied = Math.max(this.applied, index);
    this.#pendingSnapshot = snapshot;
  }

  /** Drops entries covered by a snapshot this member took of its own state machine. */
  compact(snapshot: Snapshot): void {
    if (snapshot.meta.index <= this.#offsetIndex) return;
    if (!this.matchTerm(snapshot.meta.index, snapshot.meta.term)) {
      throw new RangeError(`Snapshot at ${snapshot.meta.index} does not match the log`);
    }
    this.#compactTo(snapshot);
  }

  #compactTo(snapshot: Snapshot): void {
    const { index, term, members } = snapshot.meta;
    this.#entries = this.#entries.slice(index - this.#offsetIndex);
    this.#configIndexes = this.#configIndexes.filter((i) => i > index);
    this.#offsetIndex = index;
    this.#offsetTerm = term;
    this.#baseMembers = [...members];
    this.#snapshot = snapshot;
  }

  /** Whether anything waits to be handed out. */
  get hasPending(): boolean {
    return this.#pendingSnapshot !== null || this.#unstableFrom <= this.lastIndex ||
      this.committed > this.applied;
  }

  /** Hands out the snapshot received from the leader, if any. */
  takeSnapshot(): Snapshot | null {
    const s = this.#pendingSnapshot;
    this.#pendingSnapshot = null;
    return s;
  }

  /** Hands out the entries not yet given to storage. */
  takeUnstable(): Entry[] {
    const lo = Math.max(this.#unstableFrom, this.firstIndex);
    const out = lo <= this.lastIndex ? this.slice(lo, this.lastIndex) : [];
    this.#unstableFrom = this.lastIndex + 1;
    return out;
  }

  /** Hands out committed entries not yet applied, at most `max`. */
  takeCommitted(max: number): Entry[] {
    if (this.committed <= this.applied) return [];
    const out = this.slice(this.applied + 1, this.committed, max);
    this.applied += out.length;
    return out;
  }

  /** Records that entries up to `index` reached storage (unless overwritten since). */
  stableTo(index: number): void {
    this.stable = Math.max(this.stable, Math.min(index, this.#unstableFrom - 1));
  }
}
