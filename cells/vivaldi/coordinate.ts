/**
 * Vivaldi network coordinates (Dabek et al., SIGCOMM 2004) with the production refinements of
 * hashicorp/serf's `coordinate` package: a height term, an error-weighted adaptive timestep,
 * an adjustment term, gravity toward the origin and a per-peer median latency filter.
 *
 * All times are in seconds, as in serf.
 *
 * @module
 */

import { estimateRtt } from "@cell/sdk/nucleus_api";
import type { Random } from "./rng.ts";

// The distance function is the SDK's: the nucleus, `nearest` balancing and this package must
// agree on what a coordinate means.
export { estimateRtt };

/** A node's position in the latency space. Mirrors serf's `Coordinate`. */
export interface Coordinate {
  /** Euclidean part, one entry per dimension (seconds). */
  readonly vec: readonly number[];
  /** Confidence in this coordinate: 0 is certain, `maxError` is unknown. */
  readonly error: number;
  /** Average offset between measured and estimated RTTs, added to estimates (seconds). */
  readonly adjustment: number;
  /** Access-link latency that does not fit the Euclidean model (seconds). */
  readonly height: number;
}

/**
 * Euclidean dimensions of a coordinate unless configured. serf uses 8; on the Seattle RTT
 * matrix 12 cut the median relative error from about 0.361 to 0.353 (8 seeds), and PlanetLab
 * was unchanged (0.071 and 0.070).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_DIMENSIONS, originCoordinate } from "@cell/vivaldi";
 * assert.equal(originCoordinate().vec.length, DEFAULT_DIMENSIONS);
 * ```
 */
export const DEFAULT_DIMENSIONS = 12;

/**
 * Tuning of the Vivaldi update; the defaults are serf's `DefaultConfig()` except `dimensions`
 * and `smoothing`.
 */
export interface VivaldiOptions {
  /** Number of Euclidean dimensions. @default {DEFAULT_DIMENSIONS} */
  dimensions?: number;
  /** Error of a fresh coordinate, and the cap. serf `VivaldiErrorMax`. @default {1.5} */
  maxError?: number;
  /** Weight of a new sample in the error average. serf `VivaldiCE`. @default {0.25} */
  ce?: number;
  /** Timestep scale. serf `VivaldiCC`. @default {0.25} */
  cc?: number;
  /** Residuals averaged into `adjustment`; 0 disables it. serf `AdjustmentWindowSize`. @default {20} */
  adjustmentWindow?: number;
  /** Floor for `height` (seconds). serf `HeightMin`. @default {10e-6} */
  minHeight?: number;
  /** Samples per peer whose median is used. serf `LatencyFilterSize`. @default {3} */
  latencyFilterSize?: number;
  /** Distance (seconds) at which gravity equals a unit pull. serf `GravityRho`. @default {150} */
  gravityRho?: number;
  /** RTTs above this (seconds) are rejected as absurd. serf `maxRTT`. @default {10} */
  maxRtt?: number;
  /**
   * Weight of each new position in {@linkcode VivaldiClient.smoothedCoordinate}, an
   * exponentially weighted moving average of the coordinate (a plain running mean over the first
   * `1 / smoothing` updates, so that it starts where the coordinate is). 1 disables smoothing.
   * @default {0.01}
   */
  smoothing?: number;
  /** Source of randomness for splitting co-located nodes. */
  random: Random;
}

type Config = Required<VivaldiOptions>;

// Below this, two positions are treated as equal (serf `zeroThreshold`).
const ZERO_THRESHOLD = 1e-6;

function config(options: VivaldiOptions): Config {
  const c: Config = {
    dimensions: DEFAULT_DIMENSIONS,
    maxError: 1.5,
    ce: 0.25,
    cc: 0.25,
    adjustmentWindow: 20,
    minHeight: 10e-6,
    latencyFilterSize: 3,
    gravityRho: 150,
    maxRtt: 10,
    smoothing: 0.01,
    ...options,
  };
  if (!Number.isInteger(c.dimensions) || c.dimensions < 1) {
    throw new RangeError(`Dimensions must be a positive integer, got ${c.dimensions}`);
  }
  if (!Number.isInteger(c.adjustmentWindow) || c.adjustmentWindow < 0) {
    throw new RangeError(`Adjustment window must be an integer >= 0, got ${c.adjustmentWindow}`);
  }
  if (!Number.isInteger(c.latencyFilterSize) || c.latencyFilterSize < 1) {
    throw new RangeError(`Latency filter size must be >= 1, got ${c.latencyFilterSize}`);
  }
  if (!(c.smoothing > 0 && c.smoothing <= 1)) {
    throw new RangeError(`Smoothing must be in (0, 1], got ${c.smoothing}`);
  }
  return c;
}

/**
 * A coordinate at the origin with maximal error, as a node starts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { originCoordinate } from "@cell/vivaldi";
 * assert.ok(originCoordinate(3).vec.length === 3);
 * ```
 */
export function originCoordinate(
  dimensions = DEFAULT_DIMENSIONS,
  maxError = 1.5,
  minHeight = 10e-6,
): Coordinate {
  return { vec: new Array(dimensions).fill(0), error: maxError, adjustment: 0, height: minHeight };
}

/**
 * Whether every component of `c` is a finite number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isValidCoordinate, originCoordinate } from "@cell/vivaldi";
 * assert.ok(isValidCoordinate(originCoordinate(2)));
 * assert.ok(!isValidCoordinate({ ...originCoordinate(2), height: NaN }));
 * ```
 */
export function isValidCoordinate(c: Coordinate): boolean {
  return c.vec.every(Number.isFinite) && Number.isFinite(c.error) &&
    Number.isFinite(c.adjustment) && Number.isFinite(c.height);
}

function norm(v: readonly number[]): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

function euclid(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

/** Distance without adjustments: ‖a − b‖ + heights (serf `rawDistanceTo`). */
function rawDistance(a: Coordinate, b: Coordinate): number {
  return euclid(a.vec, b.vec) + a.height + b.height;
}

/**
 * Moves `c` by `force` along the unit vector from `other` to `c` (serf `ApplyForce`); the
 * height moves in proportion. Co-located nodes are pushed apart in a random direction.
 */
function applyForce(
  c: Coordinate,
  force: number,
  other: Coordinate,
  minHeight: number,
  random: Random,
): Coordinate {
  let unit = c.vec.map((x, i) => x - other.vec[i]!);
  let mag = norm(unit);
  if (mag > ZERO_THRESHOLD) {
    unit = unit.map((x) => x / mag);
  } else {
    unit = unit.map(() => random() - 0.5);
    const m = norm(unit);
    unit = m > ZERO_THRESHOLD ? unit.map((x) => x / m) : unit.map(() => 0);
    mag = 0;
  }
  let height = c.height;
  if (mag > ZERO_THRESHOLD) height = (c.height + other.height) * force / mag + c.height;
  return {
    vec: c.vec.map((x, i) => x + unit[i]! * force),
    error: c.error,
    adjustment: c.adjustment,
    height: Math.max(height, minHeight),
  };
}

/**
 * Checks that `rtt` (seconds) is a plausible measurement.
 *
 * @throws {RangeError} If it is not finite, not positive, or above `maxRtt`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateRtt } from "@cell/vivaldi";
 * validateRtt(0.05);
 * let threw = false;
 * try { validateRtt(-1); } catch { threw = true; }
 * assert.ok(threw);
 * ```
 */
export function validateRtt(rtt: number, maxRtt = 10): void {
  if (typeof rtt !== "number" || !Number.isFinite(rtt) || rtt <= 0 || rtt > maxRtt) {
    throw new RangeError(
      `RTT must be a finite number of seconds in (0, ${maxRtt}], got ${String(rtt)}: ` +
        "drop the sample or check the unit",
    );
  }
}

/**
 * One node's Vivaldi state (serf `Client`): its coordinate, a median filter per peer and the
 * window of residuals behind the adjustment term. Deterministic given `options.random`.
 *
 * @example Two nodes 50 ms apart converge on that distance
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateRtt, seededRandom, VivaldiClient } from "@cell/vivaldi";
 *
 * const random = seededRandom(1);
 * const a = new VivaldiClient({ dimensions: 2, random });
 * const b = new VivaldiClient({ dimensions: 2, random });
 * for (let i = 0; i < 100; i++) {
 *   a.update("b", b.coordinate, 0.05);
 *   b.update("a", a.coordinate, 0.05);
 * }
 * assert.ok(Math.abs(estimateRtt(a.coordinate, b.coordinate) - 0.05) < 0.005);
 * ```
 */
export class VivaldiClient {
  #config: Config;
  #coord: Coordinate;
  #origin: Coordinate;
  #filters = new Map<string, number[]>();
  #residuals: number[];
  #residualIndex = 0;
  #resets = 0;
  #smoothed: Coordinate;
  #smoothedCount = 0;

  /** Starts at the origin with maximal error. */
  constructor(options: VivaldiOptions) {
    this.#config = config(options);
    const { dimensions, maxError, minHeight, adjustmentWindow } = this.#config;
    this.#origin = originCoordinate(dimensions, maxError, minHeight);
    this.#coord = this.#origin;
    this.#smoothed = this.#origin;
    this.#residuals = new Array(adjustmentWindow).fill(0);
  }

  /** The current coordinate (immutable; safe to share with peers). */
  get coordinate(): Coordinate {
    return this.#coord;
  }

  /**
   * The moving average of recent coordinates, with the current error. Once converged, a
   * coordinate keeps jittering around its best position by about one step per sample;
   * estimates from the average are closer to the truth (compare the application-level
   * coordinates of Ledlie et al., "Network Coordinates in the Wild", NSDI 2007).
   */
  get smoothedCoordinate(): Coordinate {
    return this.#smoothed;
  }

  /** How many times the coordinate became non-finite and was reset to the origin. */
  get resets(): number {
    return this.#resets;
  }

  /** Forgets the latency samples of a peer that left (serf `ForgetNode`). */
  forget(peer: string): void {
    this.#filters.delete(peer);
  }

  /**
   * Folds one RTT sample (seconds) to `peer`, whose coordinate is `other`, into this node's
   * coordinate and returns it (serf `Client.Update`).
   *
   * @throws {RangeError} If `rtt` is not in (0, maxRtt] or `other` has non-finite components;
   * the state is then unchanged.
   * @throws {TypeError} If `other` has a different number of dimensions.
   */
  update(peer: string, other: Coordinate, rtt: number): Coordinate {
    const c = this.#config;
    validateRtt(rtt, c.maxRtt);
    if (other.vec.length !== c.dimensions) {
      throw new TypeError(
        `Peer "${peer}" has ${other.vec.length} dimensions, expected ${c.dimensions}`,
      );
    }
    if (!isValidCoordinate(other) || other.error < 0) {
      throw new RangeError(`Peer "${peer}" sent an invalid coordinate: ${JSON.stringify(other)}`);
    }
    const filtered = this.#filter(peer, rtt);
    this.#updateVivaldi(other, filtered);
    this.#updateAdjustment(other, filtered);
    this.#updateGravity();
    if (!isValidCoordinate(this.#coord)) {
      this.#resets++;
      this.#coord = this.#origin;
      this.#residuals.fill(0);
      this.#smoothed = this.#origin;
      this.#smoothedCount = 0;
      return this.#coord;
    }
    this.#updateSmoothed();
    return this.#coord;
  }

  #updateSmoothed(): void {
    const now = this.#coord;
    const old = this.#smoothed;
    const w = Math.max(this.#config.smoothing, 1 / ++this.#smoothedCount);
    if (w >= 1) {
      this.#smoothed = now;
      return;
    }
    const mix = (a: number, b: number) => a + w * (b - a);
    this.#smoothed = {
      vec: old.vec.map((x, i) => mix(x, now.vec[i]!)),
      error: now.error,
      adjustment: mix(old.adjustment, now.adjustment),
      height: Math.max(mix(old.height, now.height), this.#config.minHeight),
    };
  }

  // Median of the last few samples per peer damps one-off spikes (serf `latencyFilter`).
  #filter(peer: string, rtt: number): number {
    const samples = this.#filters.get(peer) ?? [];
    samples.push(rtt);
    if (samples.length > this.#config.latencyFilterSize) samples.shift();
    this.#filters.set(peer, samples);
    const sorted = [...samples].sort((x, y) => x - y);
    return sorted[Math.floor(sorted.length / 2)]!;
  }

  #updateVivaldi(other: Coordinate, rtt: number): void {
    const c = this.#config;
    const self = this.#coord;
    const dist = rawDistance(self, other);
    const wrongness = Math.abs(dist - rtt) / rtt;
    const totalError = Math.max(self.error + other.error, ZERO_THRESHOLD);
    const weight = self.error / totalError;
    const error = Math.min(
      c.ce * weight * wrongness + self.error * (1 - c.ce * weight),
      c.maxError,
    );
    const force = c.cc * weight * (rtt - dist);
    this.#coord = { ...applyForce(self, force, other, c.minHeight, c.random), error };
  }

  #updateAdjustment(other: Coordinate, rtt: number): void {
    const window = this.#config.adjustmentWindow;
    if (window === 0) return;
    this.#residuals[this.#residualIndex] = rtt - rawDistance(this.#coord, other);
    this.#residualIndex = (this.#residualIndex + 1) % window;
    const sum = this.#residuals.reduce((s, x) => s + x, 0);
    // serf divides by twice the window: each side of a pair carries half the correction.
    this.#coord = { ...this.#coord, adjustment: sum / (2 * window) };
  }

  #updateGravity(): void {
    const c = this.#config;
    const dist = estimateRtt(this.#origin, this.#coord);
    const force = -1 * (dist / c.gravityRho) ** 2;
    this.#coord = {
      ...applyForce(this.#coord, force, this.#origin, c.minHeight, c.random),
      error: this.#coord.error,
      adjustment: this.#coord.adjustment,
    };
  }
}
