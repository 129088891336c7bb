/**
 * An in-memory {@linkcode LogStorage}: everything is "durable" at once. For tests and for
 * members that keep no state across restarts.
 *
 * @module
 */
import { appendEntries, copyState, installSnapshot } from "./_storage_state.ts";
import type { Entry, HardState, LoadedState, LogStorage, Snapshot } from "./types.ts";

/**
 * Storage in memory. {@linkcode MemoryStorage.state} shows what it holds; a new
 * `MemoryStorage(previous.state)` models a restart that lost nothing.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "@cell/consensus/memory_storage";
 * import assert from "node:assert/strict";
 *
 * const storage = new MemoryStorage();
 * await storage.load();
 * storage.append([{ index: 1, term: 1, type: "noop", data: new Uint8Array() }]);
 * storage.setHardState({ term: 1, vote: "n1", commit: 1 });
 * await storage.sync();
 * assert.equal((await new MemoryStorage(storage.state).load()).entries.length, 1);
 * ```
 */
export class MemoryStorage implements LogStorage {
  #state: LoadedState;
  #syncs = 0;

  /** Starts empty, or with a copy of `state`. */
  constructor(state?: LoadedState) {
    this.#state = state
      ? copyState(state)
      : { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] };
  }

  /** A copy of what is stored. */
  get state(): LoadedState {
    return copyState(this.#state);
  }

  /** How many times `sync()` was called. */
  get syncs(): number {
    return this.#syncs;
  }

  /** Returns a copy of what is stored. */
  load(): Promise<LoadedState> {
    return Promise.resolve(this.state);
  }

  /** Appends entries, dropping a conflicting suffix first. */
  append(entries: Entry[]): void {
    appendEntries(this.#state, entries);
  }

  /** Records term, vote and commit. */
  setHardState(state: HardState): void {
    this.#state.hardState = { ...state };
  }

  /** Counts the call; everything already is durable. */
  sync(): Promise<void> {
    this.#syncs++;
    return Promise.resolve();
  }

  /** Stores the snapshot and drops the entries it covers. */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    installSnapshot(this.#state, snapshot);
    return Promise.resolve();
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
