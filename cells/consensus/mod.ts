/**
 * The consensus cell: a Raft cluster for strongly consistent key-value state.
 *
 * @module
 */
export type * from "./types.ts";
