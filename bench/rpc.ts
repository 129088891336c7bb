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
 * - `grpc_js`: `@grpc/grpc-js` unary (Node).
 *
 * Progress goes to stderr; the last line on stdout is one JSON object with every result and a
 * `checks` section comparing them against the goals of issue #2. Options: `--iterations N`,
 * `--warmup N`, `--duration-ms N`, `--warmup-ms N`, `--only name,name`.
 *
 * @module
 */
import { DEFAULT_OPTIONS, jsonLine, parseBenchOptions } from "./_measure.mjs";
import { measureInproc, measureUds } from "./cell_rpc.ts";
import { measureRawUds } from "./raw_uds.ts";
import { runNodeBaseline } from "./baselines.ts";

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
];

const results: Record<string, Result> = {};
for (const [name, run] of contenders) {
  if (only && !only.has(name)) continue;
  console.error(`bench:rpc: ${name} ...`);
  const started = performance.now();
  results[name] = await run();
  console.error(
    `bench:rpc: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s: ` +
      JSON.stringify(results[name]),
  );
}

/** The goals of issue #2, evaluated on this run's numbers. */
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
  return out;
}

await Deno.stdout.write(
  new TextEncoder().encode(jsonLine({ ...results, checks: checks(results) })),
);
