/**
 * Evaluates Vivaldi coordinates against a real RTT matrix: every host runs a
 * {@linkcode VivaldiClient}, samples noisy RTTs to random peers until the error stops falling,
 * then the estimates are scored against the measured matrix.
 *
 * ```sh
 * deno run -A cells/vivaldi/eval.ts --matrix PATH [--nodes K] [--seed S] [--dimensions D] [--json]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_DIMENSIONS, estimateRtt, VivaldiClient } from "./coordinate.ts";
import { parseRttMatrix, type RttMatrix, subMatrix } from "./matrix.ts";
import { type Random, seededRandom } from "./rng.ts";

/** Options of {@linkcode evaluate}. */
export interface EvaluateOptions {
  /** Evaluate a random subset of this many hosts; all hosts when absent. */
  nodes?: number;
  /** Seed of the PRNG (subset, peer choice, noise, trials). @default {1} */
  seed?: number;
  /**
   * Euclidean dimensions of the coordinates (a height is always added).
   * @default {DEFAULT_DIMENSIONS}
   */
  dimensions?: number;
  /**
   * Unit of the matrix entries. `"auto"` assumes milliseconds when the median entry is
   * above 10 (no real RTT is 10 s), seconds otherwise.
   * @default {"auto"}
   */
  unit?: "s" | "ms" | "auto";
  /** Relative standard deviation of the noise added to each sample. @default {0.02} */
  noise?: number;
  /** Upper bound on simulation rounds (one sample per host per round). @default {4000} */
  maxRounds?: number;
  /** Trials for hit@k and stretch. @default {20000} */
  trials?: number;
  /**
   * Weight of a new position in each node's smoothed coordinate, which is what nodes report to
   * peers and what is scored (see {@linkcode VivaldiClient.smoothedCoordinate}); 1 uses the raw
   * coordinate, as serf does. @default {0.01}
   */
  smoothing?: number;
}

/** Scores of {@linkcode evaluate}. */
export interface EvaluateResult {
  /** Median over pairs of |estimate − real| / real. */
  median_rel_error: number;
  /** 90th percentile of the same. */
  p90_rel_error: number;
  /** Fraction of trials where the lowest estimate among 3 random hosts is the truly nearest. */
  hit_at_3: number;
  /** Same among 10. */
  hit_at_10: number;
  /** Median of chosen RTT / best RTT among 10 random hosts. */
  stretch_at_10: number;
  /** Rounds simulated until convergence. */
  rounds: number;
}

const CHECK_EVERY = 50;
const MIN_ROUNDS = 300;
const PATIENCE = 6;

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(values: number[]): number {
  return quantile(values.sort((a, b) => a - b), 0.5);
}

function gaussian(random: Random): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function shuffle<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function relativeErrors(m: RttMatrix, clients: readonly VivaldiClient[]): number[] {
  const errors: number[] = [];
  for (let i = 0; i < m.size; i++) {
    for (let j = i + 1; j < m.size; j++) {
      const real = m.rtt[i]![j]!;
      if (!(real > 0)) continue;
      const est = estimateRtt(clients[i]!.smoothedCoordinate, clients[j]!.smoothedCoordinate);
      errors.push(Math.abs(est - real) / real);
    }
  }
  return errors.sort((a, b) => a - b);
}

function choice(
  m: RttMatrix,
  clients: readonly VivaldiClient[],
  k: number,
  trials: number,
  random: Random,
): { hit: number; stretch: number } {
  let hits = 0;
  let done = 0;
  const stretches: number[] = [];
  for (let t = 0; t < trials * 4 && done < trials; t++) {
    const s = Math.floor(random() * m.size);
    const known = m.rtt[s]!.flatMap((v, j) => v > 0 ? [j] : []);
    if (known.length < k) continue;
    const candidates = shuffle(known, random).slice(0, k);
    let chosen = candidates[0]!;
    let best = candidates[0]!;
    for (const c of candidates) {
      const self = clients[s]!.smoothedCoordinate;
      const est = estimateRtt(self, clients[c]!.smoothedCoordinate);
      if (est < estimateRtt(self, clients[chosen]!.smoothedCoordinate)) chosen = c;
      if (m.rtt[s]![c]! < m.rtt[s]![best]!) best = c;
    }
    const chosenRtt = m.rtt[s]![chosen]!;
    const bestRtt = m.rtt[s]![best]!;
    if (chosenRtt === bestRtt) hits++;
    stretches.push(chosenRtt / bestRtt);
    done++;
  }
  return { hit: done === 0 ? NaN : hits / done, stretch: median(stretches) };
}

/**
 * Simulates Vivaldi over the hosts of `matrix` and scores the converged coordinates.
 *
 * @example A 4 × 4 grid of hosts with Euclidean RTTs
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluate, type RttMatrix } from "@cell/vivaldi";
 *
 * const points = Array.from({ length: 16 }, (_, i) => [i % 4, Math.floor(i / 4)]);
 * const rtt = points.map(([x1, y1]) =>
 *   points.map(([x2, y2]) => 0.01 + 0.02 * Math.hypot(x1! - x2!, y1! - y2!))
 * );
 * const matrix: RttMatrix = { size: 16, rtt };
 * const result = evaluate(matrix, { dimensions: 2, trials: 500 });
 * assert.ok(result.median_rel_error < 0.1);
 * ```
 */
export function evaluate(matrix: RttMatrix, options: EvaluateOptions = {}): EvaluateResult {
  const random = seededRandom(options.seed ?? 1);
  let m = matrix;
  if (options.nodes !== undefined) {
    if (!Number.isInteger(options.nodes) || options.nodes < 2 || options.nodes > matrix.size) {
      throw new RangeError(`Nodes must be an integer in [2, ${matrix.size}], got ${options.nodes}`);
    }
    const hosts = shuffle([...Array(matrix.size).keys()], random).slice(0, options.nodes);
    m = subMatrix(matrix, hosts.sort((a, b) => a - b));
  }
  const known = m.rtt.flat().filter((v) => v > 0);
  if (known.length === 0) throw new RangeError("RTT matrix has no known entries");
  const unit = options.unit ?? "auto";
  const scale = unit === "ms" || (unit === "auto" && median([...known]) > 10) ? 1e-3 : 1;
  m = { size: m.size, rtt: m.rtt.map((row) => row.map((v) => v * scale)) };

  const noise = options.noise ?? 0.02;
  const maxRounds = options.maxRounds ?? 4000;
  const clients = Array.from(
    { length: m.size },
    () =>
      new VivaldiClient({
        dimensions: options.dimensions ?? DEFAULT_DIMENSIONS,
        random,
        ...(options.smoothing === undefined ? {} : { smoothing: options.smoothing }),
      }),
  );
  const peers = m.rtt.map((row) => row.flatMap((v, j) => v > 0 ? [j] : []));
  let rounds = 0;
  let best = Infinity;
  let stale = 0;
  while (rounds < maxRounds) {
    for (let i = 0; i < m.size; i++) {
      const list = peers[i]!;
      if (list.length === 0) continue;
      const j = list[Math.floor(random() * list.length)]!;
      const sample = m.rtt[i]![j]! * Math.max(0.5, 1 + noise * gaussian(random));
      clients[i]!.update(String(j), clients[j]!.smoothedCoordinate, sample);
    }
    rounds++;
    if (rounds % CHECK_EVERY === 0 && rounds >= MIN_ROUNDS) {
      const now = quantile(relativeErrors(m, clients), 0.5);
      if (now < best * 0.995) {
        best = now;
        stale = 0;
      } else if (++stale >= PATIENCE) break;
    }
  }

  const errors = relativeErrors(m, clients);
  const trials = options.trials ?? 20000;
  const at3 = choice(m, clients, 3, trials, random);
  const at10 = choice(m, clients, 10, trials, random);
  return {
    median_rel_error: quantile(errors, 0.5),
    p90_rel_error: quantile(errors, 0.9),
    hit_at_3: at3.hit,
    hit_at_10: at10.hit,
    stretch_at_10: at10.stretch,
    rounds,
  };
}

/** Entry point of the command line; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      matrix: { type: "string" },
      nodes: { type: "string" },
      seed: { type: "string" },
      dimensions: { type: "string" },
      unit: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  if (!values.matrix) {
    console.error(
      "Usage: eval.ts --matrix PATH [--nodes K] [--seed S] [--dimensions D] [--unit s|ms] [--json]",
    );
    return 2;
  }
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new RangeError(`--${name} must be an integer, got "${v}"`);
    return n;
  };
  const unit = values.unit as EvaluateOptions["unit"];
  if (unit !== undefined && !["s", "ms", "auto"].includes(unit)) {
    throw new RangeError(`--unit must be s, ms or auto, got "${unit}"`);
  }
  const matrix = parseRttMatrix(await Deno.readTextFile(values.matrix));
  const result = evaluate(matrix, {
    nodes: int("nodes", values.nodes),
    seed: int("seed", values.seed),
    dimensions: int("dimensions", values.dimensions),
    unit,
  });
  if (values.json) {
    console.log(JSON.stringify(result));
  } else {
    for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(18)} ${v}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
