/**
 * Vivaldi network coordinates (Dabek et al., SIGCOMM 2004) with the production refinements of
 * hashicorp/serf's `coordinate` package: a height term, an error-weighted adaptive timestep,
 * an adjustment term, gravity toward the origin and a per-peer median latency filter.
 *
 * All times are in seconds, as in serf.
 *
 * @module
 */

import type { Random } from "./rng.ts";

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

/** Tuning of the Vivaldi update; the defaults are serf's `DefaultConfig()` except `dimensions`. */
export interface VivaldiOptions {
  /** Number of Euclidean dimensions. @default {8} */
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
  /** Source of randomness for splitting co-located nodes. */
  random: Random;
}

type Config = Required<VivaldiOptions>;

// Below this, two positions are treated as equal (serf `zeroThreshold`).
const ZERO_THRESHOLD = 1e-6;

function config(options: VivaldiOptions): Config {
  const c: Config = {
    dimensions: 8,
    maxError: 1.5,
    ce: 0.25,
    cc: 0.25,
    adjustmentWindow: 20,
    minHeight: 10e-6,
    latencyFilterSize: 3,
    gravityRho: 150,
    maxRtt: 10,
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
export function originCoordinate(dimensions = 8, maxError = 1.5, minHeight = 10e-6): Coordinate {
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
 * Estimated RTT in seconds between two coordinates (serf `DistanceTo`): the Euclidean distance
 * plus both heights plus both adjustments, unless the adjustments would make it non-positive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateRtt } from "@cell/vivaldi";
 * const a = { vec: [0, 0], error: 0, adjustment: 0, height: 0.01 };
 * const b = { vec: [0.03, 0.04], error: 0, adjustment: 0, height: 0.01 };
 * assert.ok(Math.abs(estimateRtt(a, b) - 0.07) < 1e-12);
 * ```
 */
export function estimateRtt(a: Coordinate, b: Coordinate): number {
  if (a.vec.length !== b.vec.length) {
    throw new TypeError(`Coordinate dimensions differ: ${a.vec.length} and ${b.vec.length}`);
  }
  const raw = rawDistance(a, b);
  const adjusted = raw + a.adjustment + b.adjustment;
  return adjusted > 0 ? adjusted : raw;
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

  /** Starts at the origin with maximal error. */
  constructor(options: VivaldiOptions) {
    this.#config = config(options);
    const { dimensions, maxError, minHeight, adjustmentWindow } = this.#config;
    this.#origin = originCoordinate(dimensions, maxError, minHeight);
    this.#coord = this.#origin;
    this.#residuals = new Array(adjustmentWindow).fill(0);
  }

  /** The current coordinate (immutable; safe to share with peers). */
  get coordinate(): Coordinate {
    return this.#coord;
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
    }
    return this.#coord;
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
