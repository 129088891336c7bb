/**
 * Runs the Node peer baselines in `bench/baselines/` (Moleculer, gRPC) from
 * Deno for `deno task bench:rpc`.
 *
 * The first run installs their pinned npm dependencies with `npm ci` (again
 * whenever `package-lock.json` changes); each baseline then runs as
 * `node <script>` and reports one JSON line on stdout. Progress and the
 * scripts' own diagnostics go to stderr, so stdout stays free for results.
 *
 * Run directly to measure every baseline (or the named ones):
 * `deno run -A bench/baselines.ts [moleculer_local.mjs ...] [-- --iterations N ...]`.
 *
 * @module
 */

import { CLIENT_CPU, onCpu, SERVER_CPU } from "./_cpus.ts";

/** The baseline scripts, in `bench/baselines/`. */
export const NODE_BASELINES: readonly string[] = [
  "moleculer_local.mjs",
  "moleculer_tcp.mjs",
  "grpc_js.mjs",
];

/** Options of {@link runNodeBaseline}. */
export interface RunNodeBaselineOptions {
  /** Kill the script after this long (default 180 000 ms; scripts take ~10–30 s). */
  timeoutMs?: number;
}

/** Directory holding the Node baselines and their `package.json`. */
function baselinesDir(): string {
  const dir = import.meta.dirname;
  if (dir === undefined) throw new Error("bench/baselines.ts must be run from a local file");
  return `${dir}/baselines`;
}

/** Modification time of `path` in ms, or undefined if it does not exist. */
async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Error for a missing `node` or `npm`. */
function missingTool(name: string, cause?: unknown): Error {
  return new Error(
    `\`${name}\` was not found on PATH: the peer baselines need Node.js (>= 20) and npm. ` +
      "Install them, or skip the Node baselines.",
    { cause },
  );
}

/** Creates a `Deno.Command`, turning a missing executable into {@link missingTool}. */
function spawn(cmd: string, options: Deno.CommandOptions): Deno.ChildProcess {
  try {
    return new Deno.Command(cmd, options).spawn();
  } catch (err) {
    throw err instanceof Deno.errors.NotFound ? missingTool(cmd, err) : err;
  }
}

let nodeChecked: Promise<string> | undefined;

/**
 * Checks that `node` on PATH is a real Node.js and resolves to its version
 * (e.g. `v20.20.2`). Needed because Deno 2.9 puts its own `node` stand-in on
 * PATH when no Node.js is installed, which would run the baselines on Deno
 * and mislabel them.
 */
export function nodeVersion(): Promise<string> {
  nodeChecked ??= (async () => {
    const out = await spawn("node", {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    const version = new TextDecoder().decode(out.stdout).trim();
    if (!out.success || !/^v\d+\.\d+\.\d+/.test(version)) throw missingTool("node");
    return version;
  })();
  nodeChecked.catch(() => (nodeChecked = undefined));
  return nodeChecked;
}

let depsReady: Promise<void> | undefined;

/**
 * Installs the baselines' npm dependencies with `npm ci --no-audit --no-fund`
 * when `node_modules` is missing or older than `package-lock.json` (judged by
 * npm's own `node_modules/.package-lock.json`). npm's output goes to stderr.
 * Concurrent callers share one install.
 */
export function ensureNodeDeps(): Promise<void> {
  depsReady ??= (async () => {
    const dir = baselinesDir();
    const lock = await mtime(`${dir}/package-lock.json`);
    if (lock === undefined) throw new Error(`${dir}/package-lock.json is missing`);
    const installed = await mtime(`${dir}/node_modules/.package-lock.json`);
    if (installed !== undefined && installed >= lock) return;
    await nodeVersion();
    console.error(`bench: installing Node baseline dependencies (npm ci in ${dir}) ...`);
    const npm = spawn("npm", {
      args: ["ci", "--no-audit", "--no-fund"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    });
    await npm.stdout.pipeTo(Deno.stderr.writable, { preventClose: true });
    const { code } = await npm.status;
    if (code !== 0) throw new Error(`npm ci in ${dir} failed with exit code ${code}`);
    console.error("bench: Node baseline dependencies installed");
  })();
  // A failed install may be retried by a later call.
  depsReady.catch(() => (depsReady = undefined));
  return depsReady;
}

/**
 * Runs one Node baseline and returns the JSON object from the last non-empty
 * line of its stdout (every value a number).
 *
 * Installs the npm dependencies first when needed (see {@link ensureNodeDeps}).
 * The script's stderr is passed through.
 *
 * @param script File name in `bench/baselines/` (e.g. `"grpc_js.mjs"`), or an absolute path.
 * @param args Extra arguments, e.g. `["--iterations", "2000", "--duration-ms", "500"]`.
 * @param options See {@link RunNodeBaselineOptions}.
 * @returns The measured fields, e.g. `{ p50_us, p99_us, ops_s_64, ... }`.
 * @throws If node or npm is missing, the script fails or times out, or its output is not a JSON object of numbers.
 */
export async function runNodeBaseline(
  script: string,
  args: string[] = [],
  options: RunNodeBaselineOptions = {},
): Promise<Record<string, number>> {
  const { timeoutMs = 180_000 } = options;
  await nodeVersion();
  await ensureNodeDeps();
  const dir = baselinesDir();
  const path = script.startsWith("/") ? script : `${dir}/${script}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  const [command, nodeArgs] = onCpu(CLIENT_CPU, "node", [path, ...args]);
  const child = spawn(command, {
    args: nodeArgs,
    env: { CELL_BENCH_SERVER_CPU: String(SERVER_CPU) },
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
    signal: timeout,
  });
  const { code, signal, stdout } = await child.output();
  if (timeout.aborted) throw new Error(`node ${script} timed out after ${timeoutMs} ms`);
  if (signal !== null) throw new Error(`node ${script} was killed by ${signal}`);
  if (code !== 0) throw new Error(`node ${script} exited with code ${code} (see stderr above)`);
  const lines = new TextDecoder().decode(stdout).split("\n").filter((l) => l.trim() !== "");
  const last = lines.at(-1);
  if (last === undefined) throw new Error(`node ${script} printed no result line`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch (err) {
    throw new Error(`node ${script}: last stdout line is not JSON: ${last}`, { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`node ${script}: expected a JSON object, got ${last}`);
  }
  const result: Record<string, number> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new Error(`node ${script}: field ${key} is not a finite number in ${last}`);
    }
    result[key] = value;
  }
  return result;
}

if (import.meta.main) {
  const dash = Deno.args.indexOf("--");
  const names = dash < 0 ? Deno.args : Deno.args.slice(0, dash);
  const passThrough = dash < 0 ? [] : Deno.args.slice(dash + 1);
  let failed = false;
  for (const script of names.length > 0 ? names : NODE_BASELINES) {
    try {
      const result = await runNodeBaseline(script, passThrough);
      console.log(JSON.stringify({ baseline: script.replace(/\.mjs$/, ""), ...result }));
    } catch (err) {
      console.error(`bench: ${err instanceof Error ? err.message : err}`);
      failed = true;
    }
  }
  if (failed) Deno.exit(1);
}
