/**
 * A virtual disk implementing {@linkcode LogStorage}: writes are buffered until `sync()` completes
 * after a virtual delay; a crash loses every unsynced write, except perhaps a prefix of them (a
 * WAL's unsynced tail may partly reach the platter; a torn last record is dropped on load).
 *
 * @module
 */
import { appendEntries, copyState, installSnapshot } from "../_storage_state.ts";
import type { Entry, HardState, LoadedState, LogStorage, Snapshot } from "../types.ts";
import type { Rng } from "./random.ts";
import type { Scheduler } from "./scheduler.ts";

type Write =
  | { kind: "append"; entries: Entry[] }
  | { kind: "hard"; state: HardState }
  | { kind: "snapshot"; snapshot: Snapshot };

/** Delays of the virtual disk. */
export interface DiskOptions {
  /** Smallest sync latency, in virtual ms. @default {1} */
  minSyncMs?: number;
  /** Largest sync latency, in virtual ms. @default {4} */
  maxSyncMs?: number;
  /** Probability that a crash keeps a random prefix of the unsynced writes. @default {0.5} */
  tornTail?: number;
}

/** The durable contents of one member's disk, surviving crashes of the member. */
export class SimDisk {
  #scheduler: Scheduler;
  #rng: Rng;
  #opts: Required<DiskOptions>;
  #durable: LoadedState = {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: null,
    entries: [],
  };
  #pending: Write[] = [];
  #flushed = 0;
  #handle: DiskHandle | null = null;
  /** Number of completed syncs. */
  syncs = 0;

  /** A blank disk. */
  constructor(scheduler: Scheduler, rng: Rng, options: DiskOptions = {}) {
    this.#scheduler = scheduler;
    this.#rng = rng;
    this.#opts = {
      minSyncMs: options.minSyncMs ?? 1,
      maxSyncMs: options.maxSyncMs ?? 4,
      tornTail: options.tornTail ?? 0.5,
    };
  }

  /** What survives right now. */
  get durable(): LoadedState {
    return copyState(this.#durable);
  }

  /** Opens the disk for a new incarnation of the member; the previous handle goes dead. */
  open(): LogStorage {
    this.#handle?.kill();
    this.#handle = new DiskHandle(this);
    return this.#handle;
  }

  /** The member crashed: unsynced writes are lost, but a prefix of them may have landed. */
  crash(): void {
    this.#handle?.kill();
    this.#handle = null;
    if (this.#pending.length > 0 && this.#rng.chance(this.#opts.tornTail)) {
      this.#flush(this.#flushed + this.#rng.int(0, this.#pending.length - 1));
    }
    this.#pending = [];
  }

  /** @internal Buffers a write. */
  write(w: Write): void {
    this.#pending.push(w);
  }

  /** @internal Makes every write buffered so far durable after a virtual delay. */
  sync(handle: DiskHandle, extra?: Write): Promise<void> {
    if (extra) this.#pending.push(extra);
    const count = this.#flushed + this.#pending.length;
    return new Promise((resolve) => {
      this.#scheduler.at(this.#rng.int(this.#opts.minSyncMs, this.#opts.maxSyncMs), () => {
        if (!handle.alive) return; // The member crashed: the promise never settles.
        this.#flush(count);
        this.syncs++;
        resolve();
      });
    });
  }

  /** Makes writes durable up to the `upTo`-th ever issued (earlier syncs may have done part). */
  #flush(upTo: number): void {
    const n = Math.min(upTo - this.#flushed, this.#pending.length);
    if (n <= 0) return;
    const writes = this.#pending.splice(0, n);
    this.#flushed += writes.length;
    for (const w of writes) {
      if (w.kind === "append") appendEntries(this.#durable, w.entries);
      else if (w.kind === "hard") this.#durable.hardState = { ...w.state };
      else installSnapshot(this.#durable, w.snapshot);
    }
  }
}

/** One incarnation's view of the disk. */
class DiskHandle implements LogStorage {
  #disk: SimDisk;
  alive = true;

  constructor(disk: SimDisk) {
    this.#disk = disk;
  }

  kill(): void {
    this.alive = false;
  }

  load(): Promise<LoadedState> {
    return Promise.resolve(this.#disk.durable);
  }

  append(entries: Entry[]): void {
    if (this.alive) this.#disk.write({ kind: "append", entries });
  }

  setHardState(state: HardState): void {
    if (this.alive) this.#disk.write({ kind: "hard", state: { ...state } });
  }

  sync(): Promise<void> {
    return this.alive ? this.#disk.sync(this) : new Promise(() => {});
  }

  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.alive
      ? this.#disk.sync(this, { kind: "snapshot", snapshot })
      : new Promise(() => {});
  }

  close(): Promise<void> {
    this.alive = false;
    return Promise.resolve();
  }
}
