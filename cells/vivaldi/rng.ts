/**
 * A seeded pseudo-random number generator, so simulations and tests replay exactly.
 *
 * @module
 */

/** A source of uniform numbers in `[0, 1)`, like `Math.random`. */
export type Random = () => number;

/**
 * Returns a deterministic PRNG (mulberry32) seeded with `seed`.
 *
 * @example Same seed, same sequence
 * ```ts
 * import { seededRandom } from "@cell/vivaldi";
 * import assert from "node:assert/strict";
 *
 * const a = seededRandom(42);
 * const b = seededRandom(42);
 * assert.deepEqual([a(), a()], [b(), b()]);
 * ```
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
