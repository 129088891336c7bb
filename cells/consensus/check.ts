/**
 * Runs randomized fault histories of the consensus cell in the deterministic simulation and
 * checks each for Raft safety violations and linearizability.
 *
 * ```sh
 * deno run -A cells/consensus/check.ts --histories 100 [--seed S] [--json] [--duration MS]
 * ```
 *
 * Progress goes to stderr; one JSON line `{"histories","anomalies","failed_seeds"}` to stdout.
 * Exits 1 on any anomaly. A failed seed replays alone with `--seed X --histories 1`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { historySeed } from "./sim/random.ts";
import { runHistory } from "./sim/run.ts";

/** Summary printed on stdout. */
export interface CheckSummary {
  /** Histories run. */
  histories: number;
  /** Histories with at least one anomaly. */
  anomalies: number;
  /** Their seeds. */
  failed_seeds: number[];
}

/** Runs `histories` histories from `seed`; reports each on `log`. */
export async function checkHistories(
  histories: number,
  seed: number,
  options: { durationMs?: number; log?: (line: string) => void } = {},
): Promise<CheckSummary> {
  const log = options.log ?? (() => {});
  const failed: number[] = [];
  const started = performance.now();
  for (let i = 0; i < histories; i++) {
    const s = historySeed(seed, i);
    const r = await runHistory(s, { durationMs: options.durationMs });
    if (r.anomalies.length > 0) {
      failed.push(s);
      log(`history ${i + 1}/${histories} seed ${s}: ${r.anomalies.length} anomalies`);
      for (const a of r.anomalies.slice(0, 5)) log(`  ${a}`);
      log(`  replay: deno run -A cells/consensus/check.ts --seed ${s} --histories 1`);
    } else if ((i + 1) % 10 === 0 || i + 1 === histories) {
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      log(`history ${i + 1}/${histories} ok (${secs} s, ${failed.length} failed so far)`);
    }
  }
  return { histories, anomalies: failed.length, failed_seeds: failed };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      histories: { type: "string", default: "100" },
      seed: { type: "string" },
      duration: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const histories = Number(values.histories);
  if (!Number.isSafeInteger(histories) || histories < 1) {
    throw new RangeError(`--histories must be a positive integer, got "${values.histories}"`);
  }
  const seed = values.seed === undefined
    ? crypto.getRandomValues(new Uint32Array(1))[0]!
    : Number(values.seed) >>> 0;
  if (values.seed !== undefined && !Number.isSafeInteger(Number(values.seed))) {
    throw new RangeError(`--seed must be an integer, got "${values.seed}"`);
  }
  const durationMs = values.duration === undefined ? undefined : Number(values.duration);
  console.error(`consensus check: ${histories} histories, seed ${seed}`);
  const summary = await checkHistories(histories, seed, {
    durationMs,
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(summary));
  if (summary.anomalies > 0) Deno.exit(1);
}
