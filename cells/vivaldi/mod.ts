/**
 * Vivaldi network coordinates for Cell: each node keeps a small coordinate whose distances
 * predict round-trip times, so a caller can pick the nearest instance without probing them all.
 *
 * The update follows Dabek et al. (SIGCOMM 2004) with hashicorp/serf's refinements (height,
 * error-weighted timestep, adjustment term, gravity, per-peer median filter). Garbage samples
 * are rejected and a coordinate that becomes non-finite is reset.
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
