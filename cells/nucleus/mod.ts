/**
 * The nucleus: the one-per-host manager of Cell. It is itself a cell, `nucleus`, serving the
 * `Nucleus` service of `@cell/sdk/nucleus_api` on `$CELL_HOME/run/nucleus.sock`:
 *
 * - **registry**: instances register, get a lease, heartbeat, and expire after missed
 *   heartbeats; clients discover healthy instances and watch for changes (blocking queries);
 * - **health and topology**: per cell, per host;
 * - **lifecycle**: deploy, scale and stop supervised cell processes, and read their logs.
 *
 * Only one nucleus runs per Cell home: a second one fails with `ALREADY_EXISTS` naming the pid
 * of the first. Run it with `cell nucleus` or `deno run -A cells/nucleus/main.ts`.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "@cell/sdk";
 * import { Nucleus } from "@cell/sdk/nucleus_api";
 * import { startNucleus } from "@cell/nucleus";
 *
 * const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-" });
 * await using nucleus = await startNucleus({ home, nodeId: "1", log: () => {} });
 * await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus, home });
 * assert.ok((await client.health({})).status === "healthy");
 * assert.ok(nucleus.registry.size === 0);
 * ```
 *
 * @module
 */
export { type Clock, ManualClock, systemClock } from "./clock.ts";
export {
  type InstanceInfo,
  Registry,
  type RegistryOptions,
  type WatchOptions,
} from "./registry.ts";
export { healthReport, type Status, topology } from "./report.ts";
export { acquireNucleusLock, type LockHolder, type NucleusLock, nucleusLockPath } from "./lock.ts";
export {
  DEFAULT_WATCH_WAIT_MS,
  type NucleusOptions,
  resolveNodeId,
  type RunningNucleus,
  startNucleus,
} from "./nucleus.ts";
export { runNucleus, type RunOptions } from "./run.ts";
export { Supervisor, type SupervisorOptions } from "./supervisor.ts";
