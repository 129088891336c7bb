/**
 * The load shape of `deno task bench:consensus`, shared by every contender: closed-loop writers
 * (each with one write in flight, back to back) for a fixed window after a warmup, and the
 * failover probe (time from killing the leader to the first write acknowledged after it).
 *
 * A Go driver (`bench/etcd_load/`) reimplements {@linkcode driveLoad} for etcd's native client
 * with the same rules: only writes completing inside the window count, latency is per write from
 * its start, percentiles by nearest rank.
 *
 * @module
 */

/** The load both contenders get, and where their data lives. */
export interface ConsensusLoad {
  /** Writers, each with one write in flight. */
  concurrency: number;
  /** Timed window, ms. */
  durationMs: number;
  /** Untimed warmup before it, ms. */
  warmupMs: number;
  /** Distinct keys, written at random. */
  keys: number;
  /** Bytes per value. */
  valueSize: number;
  /** Parent directory of the members' data dirs. */
  dir: string;
}

/** What `bench:consensus` reports for one contender. */
export interface ConsensusResult {
  /** Acknowledged writes per second. */
  writes_s: number;
  /** Median write latency under load, ms. */
  p50_ms: number;
  /** 99th percentile write latency under load, ms. */
  p99_ms: number;
  /** From `kill -9` of the leader to the first acknowledged write, ms. */
  failover_ms: number;
}

const cleanups = new Set<() => Promise<void> | void>();

async function onSignal(): Promise<void> {
  console.error("bench: interrupted, cleaning up ...");
  await Promise.allSettled([...cleanups].map(async (c) => await c()));
  Deno.exit(130);
}

/**
 * Runs `cleanup` if the bench is interrupted (SIGINT, SIGTERM) before the returned function is
 * called, then exits with 130. Processes and temp dirs of contenders register here.
 *
 * @example
 * ```ts
 * import { cleanupOnSignal } from "./_load.ts";
 * const dir = await Deno.makeTempDir();
 * const done = cleanupOnSignal(() => Deno.remove(dir, { recursive: true }));
 * await Deno.remove(dir, { recursive: true });
 * done();
 * ```
 */
export function cleanupOnSignal(cleanup: () => Promise<void> | void): () => void {
  if (cleanups.size === 0) {
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
  }
  cleanups.add(cleanup);
  return () => {
    if (!cleanups.delete(cleanup) || cleanups.size > 0) return;
    // Listeners would keep the process alive once the bench is done.
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  };
}

/** Options of {@linkcode driveLoad}. */
export interface DriveLoadOptions {
  /** Writers, each keeping one write in flight. @default 64 */
  concurrency?: number;
  /** Length of the timed window, in ms. @default 5000 */
  durationMs?: number;
  /** Untimed warmup before the window, in ms. @default 1000 */
  warmupMs?: number;
  /** One write; resolves once it is acknowledged, rejects on failure. */
  op: () => Promise<void>;
}

/** What one load run measured. */
export interface LoadResult {
  /** Acknowledged writes per second inside the window. */
  writes_s: number;
  /** Median write latency, ms. */
  p50_ms: number;
  /** 99th percentile write latency, ms. */
  p99_ms: number;
  /** Writes that failed inside the window (not counted in `writes_s`). */
  errors: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Runs `op` from `concurrency` closed loops for `warmupMs + durationMs`. A write counts when it
 * completes inside the timed window; its latency runs from its own start.
 *
 * @example
 * ```ts
 * import { driveLoad } from "./_load.ts";
 * const r = await driveLoad({ concurrency: 4, durationMs: 50, warmupMs: 10, op: async () => {} });
 * if (r.writes_s <= 0) throw new Error("no writes");
 * ```
 */
export async function driveLoad(options: DriveLoadOptions): Promise<LoadResult> {
  const { concurrency = 64, durationMs = 5000, warmupMs = 1000, op } = options;
  const start = performance.now();
  const timedFrom = start + warmupMs;
  const end = timedFrom + durationMs;
  const samples: number[] = [];
  let errors = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      let ok = true;
      try {
        await op();
      } catch {
        ok = false;
      }
      const t1 = performance.now();
      if (t1 < timedFrom || t1 >= end) continue;
      if (ok) samples.push(t1 - t0);
      else errors++;
    }
  }));
  const sorted = Float64Array.from(samples).sort();
  return {
    writes_s: Math.round(samples.length / (durationMs / 1000)),
    p50_ms: round2(percentile(sorted, 0.5)),
    p99_ms: round2(percentile(sorted, 0.99)),
    errors,
  };
}

/** Options of {@linkcode measureFailover}. */
export interface FailoverOptions {
  /** Kills the current leader (`kill -9`); resolves once the signal is sent. */
  killLeader: () => Promise<void>;
  /**
   * One write with a short deadline of its own; rejects on failure or timeout. Called again
   * straight after a failure, so it should spread its attempts over the members still up.
   */
  write: () => Promise<void>;
  /** Writers running when the leader dies. @default 4 */
  concurrency?: number;
  /** Steady writes before the kill, in ms. @default 500 */
  settleMs?: number;
  /** Give up after this long without an acknowledged write, in ms. @default 30000 */
  timeoutMs?: number;
}

/**
 * Measures the time from `killLeader()` to the first write acknowledged after it. Writers loop
 * on `write()` (retrying on error) before, during and after the kill; only writes started after
 * the kill count, so that an acknowledgement already on its way from the old leader does not.
 *
 * @example
 * ```ts
 * import { measureFailover } from "./_load.ts";
 * let down = false;
 * const ms = await measureFailover({
 *   killLeader: async () => {
 *     down = true;
 *     setTimeout(() => down = false, 20);
 *   },
 *   write: async () => {
 *     await new Promise((r) => setTimeout(r, 1));
 *     if (down) throw new Error("no leader");
 *   },
 *   settleMs: 10,
 * });
 * if (ms < 15) throw new Error(`too fast: ${ms}`);
 * ```
 */
export async function measureFailover(options: FailoverOptions): Promise<number> {
  const { killLeader, write, concurrency = 4, settleMs = 500, timeoutMs = 30_000 } = options;
  let killedAt = Infinity;
  let ackedAt = Infinity;
  let done = false;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!done) {
      const t0 = performance.now();
      try {
        await write();
      } catch {
        // A bounded pause so a member refusing connections at once does not spin the CPU the
        // survivors need to elect a leader.
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const t1 = performance.now();
      if (t0 >= killedAt && t1 < ackedAt) {
        ackedAt = t1;
        done = true;
      }
    }
  });
  try {
    await new Promise((r) => setTimeout(r, settleMs));
    killedAt = performance.now();
    await killLeader();
    const deadline = setTimeout(() => done = true, timeoutMs);
    await Promise.all(loops);
    clearTimeout(deadline);
  } finally {
    done = true;
    await Promise.all(loops);
  }
  if (ackedAt === Infinity) {
    throw new Error(`No write was acknowledged ${timeoutMs} ms after the kill`);
  }
  return Math.round((ackedAt - killedAt) * 10) / 10;
}
