/**
 * The deterministic simulation of the consensus cell: the real Raft and driver code over a
 * virtual network, disk and clock, driven by a seeded scheduler.
 *
 * @module
 */
export { type HistoryOptions, type HistoryResult, runHistory } from "./run.ts";
export { type ClusterOptions, SimCluster } from "./cluster.ts";
export { type ClientOptions, SimClient } from "./clients.ts";
export { type DiskOptions, SimDisk } from "./disk.ts";
export { type NetworkFaults, SimNetwork } from "./network.ts";
export { SimClock } from "./clock.ts";
export { historySeed, Rng } from "./random.ts";
export { Scheduler } from "./scheduler.ts";
