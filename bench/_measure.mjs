/**
 * Shared measurement helpers for `deno task bench:rpc`.
 *
 * Plain ES module JavaScript on purpose: the Node baselines in
 * `bench/baselines/` and the Deno benchmarks both import this file, so every
 * contender is timed by exactly the same code. Timing uses
 * `performance.now()`, which has sub-microsecond resolution in both Node and
 * Deno 2.
 *
 * The loops never rely on timers to stop: a call that resolves entirely in
 * microtasks (an in-process broker, say) would starve `setTimeout`, so the
 * deadline is checked with `performance.now()` after every completed call.
 *
 * @module
 */

/**
 * Latency percentiles of a sequential run, all in microseconds rounded to 0.1.
 *
 * @typedef {object} LatencyResult
 * @property {number} p50_us Median round trip.
 * @property {number} p99_us 99th percentile round trip.
 * @property {number} p999_us 99.9th percentile round trip.
 * @property {number} mean_us Arithmetic mean round trip.
 * @property {number} iterations Number of timed calls (warmup excluded).
 */

/**
 * Throughput of a closed loop with a fixed number of calls in flight.
 *
 * @typedef {object} ThroughputResult
 * @property {number} ops_s Calls completed per second inside the timed window (integer).
 * @property {number} concurrency Calls kept in flight.
 */

/**
 * Options shared by every benchmark script, from argv and the environment.
 *
 * @typedef {object} BenchOptions
 * @property {number} iterations Timed sequential calls for latency.
 * @property {number} warmup Untimed sequential calls before the latency run.
 * @property {number} durationMs Length of the timed throughput window.
 * @property {number} warmupMs Untimed throughput warmup before the window.
 * @property {number} concurrency Calls in flight for throughput.
 */

/** Defaults of {@link BenchOptions}; sized so one script takes well under 30 s. */
export const DEFAULT_OPTIONS = Object.freeze({
  iterations: 20000,
  warmup: 2000,
  durationMs: 3000,
  warmupMs: 500,
  concurrency: 64,
});

/**
 * Rounds to one decimal place.
 *
 * @param {number} x
 * @returns {number}
 */
function round1(x) {
  return Math.round(x * 10) / 10;
}

/**
 * Nearest-rank percentile of an ascending sorted array.
 *
 * @param {Float64Array} sorted Samples in ascending order (non-empty).
 * @param {number} q Quantile in (0, 1].
 * @returns {number}
 */
function percentile(sorted, q) {
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? NaN;
}

/**
 * Measures round-trip latency by awaiting `call()` strictly one at a time.
 *
 * Runs `warmup` untimed calls first, then times each of `iterations` calls
 * individually with `performance.now()`.
 *
 * @param {() => unknown} call One request/response round trip; may return a promise.
 * @param {{ warmup?: number, iterations?: number }} [options]
 * @returns {Promise<LatencyResult>}
 */
export async function measureLatency(call, { warmup = 2000, iterations = 20000 } = {}) {
  if (!(iterations >= 1)) throw new RangeError("iterations must be >= 1");
  for (let i = 0; i < warmup; i++) await call();
  const samples = new Float64Array(iterations);
  await timeInto(call, samples, 0, iterations);
  return summarize(samples);
}

/**
 * Times `count` sequential calls into `samples` from `offset` on (milliseconds).
 *
 * @param {() => unknown} call
 * @param {Float64Array} samples
 * @param {number} offset
 * @param {number} count
 * @returns {Promise<void>}
 */
async function timeInto(call, samples, offset, count) {
  for (let i = offset; i < offset + count; i++) {
    const t0 = performance.now();
    await call();
    samples[i] = performance.now() - t0;
  }
}

/**
 * Percentiles of round-trip samples given in milliseconds.
 *
 * @param {Float64Array} samples Modified: sorted in place.
 * @returns {LatencyResult}
 */
function summarize(samples) {
  let total = 0;
  for (const s of samples) total += s;
  samples.sort();
  return {
    p50_us: round1(percentile(samples, 0.5) * 1000),
    p99_us: round1(percentile(samples, 0.99) * 1000),
    p999_us: round1(percentile(samples, 0.999) * 1000),
    mean_us: round1((total / samples.length) * 1000),
    iterations: samples.length,
  };
}

/**
 * Measures the latency of several contenders side by side: after a warmup of each, it runs
 * `rounds` short rounds, and in each round times `iterations / rounds` calls of every
 * contender in turn. A machine that drifts (CPU frequency, neighbours on a shared host)
 * then shifts every contender alike, so their ratio stays meaningful; timed back to back,
 * the drift between two long runs here often exceeds the difference being measured.
 *
 * @param {Record<string, () => unknown>} calls One round trip per contender, by name.
 * @param {{ warmup?: number, iterations?: number, rounds?: number }} [options]
 * @returns {Promise<Record<string, LatencyResult>>}
 */
export async function measurePairedLatency(
  calls,
  { warmup = 2000, iterations = 20000, rounds = 20 } = {},
) {
  const names = Object.keys(calls);
  const perRound = Math.max(1, Math.floor(iterations / rounds));
  /** @type {Record<string, Float64Array>} */
  const samples = {};
  for (const name of names) {
    const call = /** @type {() => unknown} */ (calls[name]);
    for (let i = 0; i < warmup; i++) await call();
    samples[name] = new Float64Array(perRound * rounds);
  }
  for (let round = 0; round < rounds; round++) {
    // Alternate the order too, so that neither contender always runs right after the other.
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const into = /** @type {Float64Array} */ (samples[name]);
      await timeInto(/** @type {() => unknown} */ (calls[name]), into, round * perRound, perRound);
    }
  }
  /** @type {Record<string, LatencyResult>} */
  const out = {};
  for (const name of names) out[name] = summarize(/** @type {Float64Array} */ (samples[name]));
  return out;
}

/**
 * Measures throughput with exactly `concurrency` calls in flight.
 *
 * Starts `concurrency` workers, each looping `await call()`. Calls completing
 * during the first `warmupMs` are not counted; calls completing during the
 * following `durationMs` are. Workers then stop issuing new calls and the
 * function waits for the in-flight ones to settle before returning.
 *
 * @param {() => unknown} call One request/response round trip; may return a promise.
 * @param {{ concurrency?: number, warmupMs?: number, durationMs?: number }} [options]
 * @returns {Promise<ThroughputResult>}
 */
export async function measureThroughput(
  call,
  { concurrency = 64, warmupMs = 500, durationMs = 3000 } = {},
) {
  if (!(concurrency >= 1)) throw new RangeError("concurrency must be >= 1");
  if (!(durationMs > 0)) throw new RangeError("durationMs must be > 0");
  // The clock is read once per 64 completed calls, not per call (a clock read is a noticeable
  // share of a 1 µs call); the window's ends are the times actually read, so the rate is exact.
  let phase = 0; // 0 warming up, 1 counting, 2 done
  let completed = 0;
  let ticks = 0;
  const started = performance.now();
  let windowStart = 0;
  let windowEnd = 0;
  const tick = () => {
    const now = performance.now();
    if (phase === 0 && now >= started + warmupMs) {
      phase = 1;
      windowStart = now;
    } else if (phase === 1 && now >= windowStart + durationMs) {
      phase = 2;
      windowEnd = now;
    }
  };
  /** @returns {Promise<void>} */
  const worker = async () => {
    for (;;) {
      await call();
      if ((++ticks & 63) === 0) tick();
      if (phase === 1) completed++;
      else if (phase === 2) return;
    }
  };
  const workers = [];
  for (let i = 0; i < concurrency; i++) workers.push(worker());
  await Promise.all(workers);
  return {
    ops_s: Math.round(completed / ((windowEnd - windowStart) / 1000)),
    concurrency,
  };
}
/**
 * Reads {@link BenchOptions} from command-line flags, falling back to
 * environment variables and then to {@link DEFAULT_OPTIONS}.
 *
 * Flags: `--iterations N`, `--warmup N`, `--duration-ms N`, `--warmup-ms N`,
 * `--concurrency N` (also `--flag=N`). Environment: `CELL_BENCH_ITERATIONS`,
 * `CELL_BENCH_WARMUP`, `CELL_BENCH_DURATION_MS`, `CELL_BENCH_WARMUP_MS`,
 * `CELL_BENCH_CONCURRENCY`. Unknown flags are ignored so scripts can add their
 * own.
 *
 * @param {readonly string[]} args Command-line arguments (without the program name).
 * @param {(name: string) => string | undefined} [getEnv] Environment lookup.
 * @returns {BenchOptions}
 */
export function parseBenchOptions(args, getEnv = () => undefined) {
  /** @type {Record<string, keyof BenchOptions>} */
  const names = {
    "iterations": "iterations",
    "warmup": "warmup",
    "duration-ms": "durationMs",
    "warmup-ms": "warmupMs",
    "concurrency": "concurrency",
  };
  /** @type {BenchOptions} */
  const out = { ...DEFAULT_OPTIONS };
  /**
   * @param {keyof BenchOptions} key
   * @param {string} raw
   * @param {string} source
   */
  const set = (key, raw, source) => {
    const n = Number(raw);
    const min = key === "warmup" || key === "warmupMs" ? 0 : 1;
    if (!Number.isInteger(n) || n < min) {
      throw new RangeError(`${source}: expected an integer >= ${min}, got ${JSON.stringify(raw)}`);
    }
    out[key] = n;
  };
  for (const [flag, key] of Object.entries(names)) {
    const env = `CELL_BENCH_${flag.toUpperCase().replace("-", "_")}`;
    const value = getEnv(env);
    if (value !== undefined && value !== "") set(key, value, env);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = m?.[1] !== undefined ? names[m[1]] : undefined;
    if (!m || key === undefined) continue;
    const raw = m[2] ?? args[++i];
    if (raw === undefined) throw new RangeError(`${arg}: missing value`);
    set(key, raw, arg);
  }
  return out;
}

/**
 * Serializes a flat result object as one JSON line (newline included), the
 * format every baseline prints as its last line of stdout.
 *
 * @param {Record<string, unknown>} obj
 * @returns {string}
 */
export function jsonLine(obj) {
  return JSON.stringify(obj) + "\n";
}
