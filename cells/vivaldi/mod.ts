/**
 * Vivaldi network coordinates for Cell: each node keeps a small coordinate whose distances
 * predict round-trip times, so a caller can pick the nearest instance without probing them all.
 *
 * The update follows Dabek et al. (SIGCOMM 2004) with hashicorp/serf's refinements (height,
 * error-weighted timestep, adjustment term, gravity, per-peer median filter). Garbage samples
 * are rejected and a coordinate that becomes non-finite is reset.
 *
 * Measurement and routing: a {@linkcode VivaldiAgent} pings random peers with the SDK's PING
 * frame and takes their coordinates from the nucleus's instance records (every instance
 * reports its own with its heartbeats). The Vivaldi cell ({@linkcode startVivaldi}, or
 * `deno run -A cells/vivaldi/main.ts`) keeps the host's coordinate in the nucleus and serves
 * {@linkcode Vivaldi}: `coordinate`, `estimate_rtt`, `route` and `status`. Clients that
 * `connect(cell, { balance: "nearest" })` call the instances with the lowest RTT.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateRtt, seededRandom, VivaldiClient } from "@cell/vivaldi";
 *
 * const random = seededRandom(7);
 * const a = new VivaldiClient({ random });
 * const b = new VivaldiClient({ random });
 * for (let i = 0; i < 50; i++) {
 *   a.update("b", b.coordinate, 0.02);
 *   b.update("a", a.coordinate, 0.02);
 * }
 * assert.ok(Math.abs(estimateRtt(a.coordinate, b.coordinate) - 0.02) < 0.004);
 * ```
 *
 * @module
 */

export {
  type Coordinate,
  DEFAULT_DIMENSIONS,
  estimateRtt,
  isValidCoordinate,
  originCoordinate,
  validateRtt,
  VivaldiClient,
  type VivaldiOptions,
} from "./coordinate.ts";
export { parseRttMatrix, type RttMatrix, subMatrix } from "./matrix.ts";
export { type Random, seededRandom } from "./rng.ts";
export { evaluate, type EvaluateOptions, type EvaluateResult } from "./eval.ts";
export { type AgentOptions, VivaldiAgent } from "./agent.ts";
export {
  NodeCoordinate,
  NodeRequest,
  PairRequest,
  rankInstances,
  RouteEntry,
  RouteRequest,
  Routes,
  RttEstimate,
  Status,
  Vivaldi,
  VIVALDI_CELL,
} from "./service.ts";
export { type RunningVivaldi, startVivaldi, type VivaldiCellOptions } from "./cell.ts";
