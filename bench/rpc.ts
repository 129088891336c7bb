/**
 * `deno task bench:rpc`: the greet call (`{name:"World"}` -> `{greeting:"Hello, World!"}`)
 * through Cell and through its peers, all in ONE run and measured by the same code
 * (`_measure.mjs`), one contender at a time so they never compete for the two cores:
 *
 * - `inproc`: Cell client and cell in one isolate (no serialization);
 * - `uds`: Cell over a Unix socket to a server process (p50/p99 one call at a time, ops/s with
 *   64 calls in flight on one connection);
 * - `raw_uds`: the floor, a raw Deno Unix-socket ping-pong of 32-byte messages;
 * - `moleculer_local`, `moleculer_tcp`: Moleculer 0.15 in-process, and two brokers over its
 *   TCP transporter (Node);
 * - `grpc_js`: `@grpc/grpc-js` unary (Node);
 * - `shm`: Cell over the shared-memory ring to a server process (`shm.ts`: latency, ops/s with
 *   64 in flight, and `idle_wake_us`, the first call after both sides parked);
 * - `shm_raw`: the ring's floor, 32-byte records one way (`shm_raw.ts`).
 *
 * `uds` is kept on Unix sockets (`CELL_SHM=0` for this process and the servers it starts,
 * since `connect()` would otherwise prefer the ring); `shm` names the ring explicitly.
 *
 * Every client runs on CPU 0 and every server on CPU 1 (see `_cpus.ts`). The `p50_us`/`p99_us`
 * of `uds` and `raw_uds` come from a phase where both are timed side by side in 200 alternating
 * rounds, so that machine drift does not bias their ratio; the solo runs' figures are kept as
 * `p50_us_solo`/`p99_us_solo`.
 *
 * Progress goes to stderr; the last line on stdout is one JSON object with every result and a
 * `checks` section comparing them against the goals of issue #2. Options: `--iterations N`,
 * `--warmup N`, `--duration-ms N`, `--warmup-ms N`, `--only name,name`.
 *
 * @module
 */
import { DEFAULT_OPTIONS, jsonLine, measurePairedLatency, parseBenchOptions } from "./_measure.mjs";
import { measureInproc, measureUds, startUdsGreeter } from "./cell_rpc.ts";
import { measureRawUds, startRawUds } from "./raw_uds.ts";
import { runNodeBaseline } from "./baselines.ts";
import { canPin, CLIENT_CPU, pinSelf, SERVER_CPU } from "./_cpus.ts";

await pinSelf();
Deno.env.set("CELL_SHM", "0");

type Result = Record<string, number>;

const opts = {
  ...DEFAULT_OPTIONS,
  ...parseBenchOptions(Deno.args, (k: string) => Deno.env.get(k)),
};
const passThrough = ["--iterations", String(opts.iterations), "--warmup", String(opts.warmup)]
  .concat(["--duration-ms", String(opts.durationMs), "--warmup-ms", String(opts.warmupMs)]);
const onlyIndex = Deno.args.indexOf("--only");
const only = onlyIndex >= 0 ? new Set(Deno.args[onlyIndex + 1]?.split(",")) : undefined;

const contenders: [string, () => Promise<Result>][] = [
  ["inproc", () => measureInproc(opts)],
  ["uds", () => measureUds(opts)],
  ["raw_uds", () => measureRawUds(opts)],
  ["moleculer_local", () => runNodeBaseline("moleculer_local.mjs", passThrough)],
  ["moleculer_tcp", () => runNodeBaseline("moleculer_tcp.mjs", passThrough)],
  ["grpc_js", () => runNodeBaseline("grpc_js.mjs", passThrough)],
  ["shm", () => inOwnProcess("./shm.ts", "shm")],
  ["shm_raw", () => inOwnProcess("./shm_raw.ts", "shm_raw")],
];

/**
 * Runs a contender's client in a fresh process (pinned to the client CPU by that module), as
 * the Node baselines are: after the in-process and Unix-socket runs, this process's heap and the
 * JIT's type feedback for the SDK's shared call path (now seeing three connection classes)
 * cost the ring ~10% of its throughput, which a client using one transport never pays.
 */
async function inOwnProcess(module: string, key: string): Promise<Result> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(module, import.meta.url).pathname, ...passThrough],
    env: { CELL_SHM: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${module} exited with code ${output.code}`);
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  const result = (JSON.parse(lines[lines.length - 1]!) as Record<string, Result>)[key];
  if (!result) throw new Error(`${module} printed no '${key}' result`);
  return result;
}

const results: Record<string, Result> = {};

// Latency of Cell over a Unix socket against the raw floor, measured side by side in
// alternating rounds (see measurePairedLatency): the ratio the goal is about.
let paired: Record<string, { p50_us: number; p99_us: number; p999_us: number }> | undefined;
if (!only || (only.has("uds") && only.has("raw_uds"))) {
  console.error("bench:rpc: uds and raw_uds latency, side by side ...");
  await using greeter = await startUdsGreeter();
  await using echo = await startRawUds();
  paired = await measurePairedLatency({ uds: greeter.call, raw_uds: echo.roundTrip }, {
    ...opts,
    rounds: 200,
  });
  console.error(`bench:rpc: side by side: ${JSON.stringify(paired)}`);
}

for (const [name, run] of contenders) {
  if (only && !only.has(name)) continue;
  console.error(`bench:rpc: ${name} ...`);
  const started = performance.now();
  results[name] = await run();
  const side = paired?.[name];
  if (side) {
    // One-at-a-time latency from the side-by-side phase; the solo run's is kept as *_solo.
    const r = results[name]!;
    r.p50_us_solo = r.p50_us!;
    r.p99_us_solo = r.p99_us!;
    r.p50_us = side.p50_us;
    r.p99_us = side.p99_us;
    r.p999_us = side.p999_us;
  }
  console.error(
    `bench:rpc: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s: ` +
      JSON.stringify(results[name]),
  );
}

/** The goals of issues #2 and #3, evaluated on this run's numbers. */
function checks(r: Record<string, Result>): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  const ratio = (a?: number, b?: number) => a && b ? Math.round((a / b) * 100) / 100 : NaN;
  if (r.uds && r.moleculer_tcp) {
    out.uds_ops_vs_moleculer_tcp = ratio(r.uds.ops_s_64, r.moleculer_tcp.ops_s_64);
    out.uds_ops_at_least_2x_moleculer_tcp = out.uds_ops_vs_moleculer_tcp >= 2;
  }
  if (r.uds && r.raw_uds) {
    out.uds_p50_vs_raw = ratio(r.uds.p50_us, r.raw_uds.p50_us);
    out.uds_p50_within_1_3x_raw = out.uds_p50_vs_raw <= 1.3;
  }
  if (r.inproc && r.moleculer_local) {
    out.inproc_vs_moleculer_local = ratio(r.inproc.ops_s, r.moleculer_local.ops_s);
    out.inproc_at_least_moleculer_local = out.inproc_vs_moleculer_local >= 1;
  }
  if (r.uds && r.grpc_js) out.uds_ops_vs_grpc_js = ratio(r.uds.ops_s_64, r.grpc_js.ops_s_64);
  // Issue #3: the shared-memory ring.
  if (r.shm) {
    out.shm_p50_at_most_1_5_us = r.shm.p50_us! <= 1.5;
    out.shm_p99_at_most_10_us = r.shm.p99_us! <= 10;
    out.shm_ops_at_least_1_5m = r.shm.ops_s_64! >= 1_500_000;
  }
  if (r.shm && r.uds) {
    out.uds_p50_vs_shm = ratio(r.uds.p50_us, r.shm.p50_us);
    out.shm_p50_at_least_20x_below_uds = out.uds_p50_vs_shm >= 20;
  }
  if (r.shm_raw) {
    out.shm_raw_batched_at_least_20m = r.shm_raw.one_way_msgs_s_batched! >= 20_000_000;
  }
  return out;
}

const setup = {
  pinned: canPin(),
  client_cpu: CLIENT_CPU,
  server_cpu: SERVER_CPU,
  deno: Deno.version.deno,
  iterations: opts.iterations,
  duration_ms: opts.durationMs,
};
await Deno.stdout.write(
  new TextEncoder().encode(jsonLine({ ...results, checks: checks(results), setup })),
);
