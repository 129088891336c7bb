/**
 * The rules every `LogStorage` applies to its contents, shared by the in-memory storage and the
 * simulated disk so that both agree with the Raft core.
 *
 * @module
 */
import type { Entry, LoadedState, Snapshot } from "./types.ts";

/** Appends entries, dropping stored entries from `entries[0].index` on. */
export function appendEntries(state: LoadedState, entries: readonly Entry[]): void {
  if (entries.length === 0) return;
  const first = entries[0]!.index;
  const base = state.snapshot?.meta.index ?? 0;
  const keep = Math.max(0, first - base - 1);
  if (keep > state.entries.length) {
    throw new RangeError(
      `Append at ${first} leaves a gap after ${base + state.entries.length}: append in order`,
    );
  }
  state.entries.length = keep;
  for (const e of entries) if (e.index > base) state.entries.push(e);
}

/**
 * Installs a snapshot: drops the entries it covers, and also every later entry unless the stored
 * entry at the snapshot's index has the snapshot's term (Raft's InstallSnapshot rule).
 */
export function installSnapshot(state: LoadedState, snapshot: Snapshot): void {
  const base = state.snapshot?.meta.index ?? 0;
  const { index, term } = snapshot.meta;
  if (index <= base) return;
  const at = state.entries[index - base - 1];
  state.entries = at !== undefined && at.term === term ? state.entries.slice(index - base) : [];
  state.snapshot = snapshot;
  if (state.hardState.commit < index) state.hardState = { ...state.hardState, commit: index };
}

/** A deep enough copy for a caller that may keep mutating its own. */
export function copyState(state: LoadedState): LoadedState {
  return {
    hardState: { ...state.hardState },
    snapshot: state.snapshot,
    entries: [...state.entries],
  };
}
