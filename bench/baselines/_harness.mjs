/**
 * Process plumbing shared by the Node baselines: each script runs as the
 * client ("parent") and forks itself with `--server` as the server ("child").
 *
 * Guarantees:
 * - the child reports readiness over the fork IPC channel (`{ ready, ...info }`)
 *   and the parent waits for it with a timeout;
 * - the child exits on its own as soon as the IPC channel closes, so it never
 *   outlives the parent, even if the parent is SIGKILLed;
 * - the parent kills the child on normal exit, on SIGINT/SIGTERM/SIGHUP, and on
 *   uncaught errors, and prints failures to stderr with a non-zero exit code;
 * - the whole run is bounded by a watchdog timer.
 *
 * @module
 */

import { execFileSync, fork } from "node:child_process";
import { basename } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { jsonLine, parseBenchOptions } from "../_measure.mjs";

/** @typedef {import("node:child_process").ChildProcess} ChildProcess */
/** @typedef {import("../_measure.mjs").BenchOptions} BenchOptions */

/** How long a server child may take to report readiness. */
const READY_TIMEOUT_MS = 15_000;

/** Children to kill when the parent goes away. */
const children = new Set();

/** Kills every live child with SIGKILL; safe to call repeatedly. */
function killChildren() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
}

/**
 * Prints an error to stderr, kills the children and exits with `code`.
 *
 * @param {string} name Benchmark name used as the message prefix.
 * @param {unknown} err
 * @param {number} [code]
 * @returns {never}
 */
function fail(name, err, code = 1) {
  const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`${name}: error: ${msg}\n`);
  killChildren();
  process.exit(code);
}

/**
 * Parses the common benchmark options from `process.argv` and the environment.
 *
 * @returns {BenchOptions}
 */
export function benchOptions() {
  return parseBenchOptions(process.argv.slice(2), (k) => process.env[k]);
}

/**
 * Returns the value following `--flag` (or in `--flag=value`) in argv.
 *
 * @param {string} flag Flag name including the leading dashes.
 * @param {string} fallback Returned when the flag is absent.
 * @returns {string}
 */
export function argValue(flag, fallback) {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === flag) return argv[i + 1] ?? fallback;
    if (arg.startsWith(flag + "=")) return arg.slice(flag.length + 1);
  }
  return fallback;
}

/**
 * True when this process was forked as the server side.
 *
 * @returns {boolean}
 */
export function isServer() {
  return process.argv.includes("--server");
}

/**
 * Runs the server side: calls `start()`, then reports `{ ready: true, ...info }`
 * to the parent and stays alive until the IPC channel closes or the parent
 * kills it. On failure it reports `{ error }` and exits non-zero.
 *
 * @param {string} name Benchmark name for error messages.
 * @param {() => Promise<Record<string, unknown>>} start Starts the server; resolves to info for the parent (e.g. the port).
 * @returns {Promise<void>}
 */
export async function serveChild(name, start) {
  if (typeof process.send !== "function") {
    fail(name, "--server must be started by the parent via fork");
  }
  // Never outlive the parent: the IPC channel closes when it exits or dies.
  process.on("disconnect", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
  try {
    const info = await start();
    process.send?.({ ready: true, ...info });
  } catch (err) {
    process.send?.({ error: err instanceof Error ? err.message : String(err) });
    fail(`${name} (server)`, err);
  }
}

/**
 * Forks `scriptUrl --server [...args]` and waits until it reports readiness.
 *
 * @param {string} scriptUrl `import.meta.url` of the script to fork.
 * @param {string[]} [args] Extra arguments for the child.
 * @returns {Promise<{ child: ChildProcess, info: Record<string, unknown> }>}
 */
export function forkServer(scriptUrl, args = []) {
  const script = fileURLToPath(scriptUrl);
  const child = fork(script, ["--server", ...args], {
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  children.add(child);
  // Like every contender of bench:rpc, the server runs on its own CPU when the Deno side asks.
  const cpu = process.env.CELL_BENCH_SERVER_CPU;
  if (cpu !== undefined && child.pid !== undefined) {
    try {
      execFileSync("taskset", ["-pc", cpu, String(child.pid)], { stdio: "ignore" });
    } catch {
      // No taskset: run unpinned, as the Deno side then does too.
    }
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`server child not ready within ${READY_TIMEOUT_MS} ms`));
    }, READY_TIMEOUT_MS);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server child exited early (code ${code}, signal ${signal})`));
    });
    child.on("message", (/** @type {Record<string, unknown>} */ msg) => {
      if (msg?.error !== undefined) {
        clearTimeout(timer);
        reject(new Error(`server child failed: ${String(msg.error)}`));
      } else if (msg?.ready === true) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        child.once("exit", (code, signal) => {
          if (children.has(child)) {
            const msg = `server child died during the run (code ${code}, signal ${signal})`;
            fail(basename(script), msg);
          }
        });
        resolve({ child, info: msg });
      }
    });
  });
}

/**
 * Stops a child started by {@link forkServer} and waits for it to exit.
 *
 * @param {ChildProcess} child
 * @returns {Promise<void>}
 */
export function stopServer(child) {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * Runs the client side of a baseline: installs the cleanup handlers and a
 * watchdog, awaits `body()`, prints its result as exactly one JSON line on
 * stdout and exits 0. Any failure goes to stderr with exit code 1.
 *
 * @param {string} name Benchmark name for error messages.
 * @param {() => Promise<Record<string, number>>} body Runs the measurement.
 * @param {number} [timeoutMs] Watchdog for the whole run.
 * @returns {Promise<never>}
 */
export async function runClient(name, body, timeoutMs = 120_000) {
  process.on("exit", killChildren);
  for (const [sig, num] of /** @type {const} */ ([["SIGHUP", 1], ["SIGINT", 2], ["SIGTERM", 15]])) {
    process.on(sig, () => fail(name, `interrupted by ${sig}`, 128 + num));
  }
  process.on("uncaughtException", (err) => fail(name, err));
  process.on("unhandledRejection", (err) => fail(name, err));
  // Not unref'd: it also keeps the process alive if `body()` stalls with no I/O.
  setTimeout(() => fail(name, `timed out after ${timeoutMs} ms`), timeoutMs);
  let result;
  try {
    result = await body();
  } catch (err) {
    fail(name, err);
  }
  killChildren();
  process.stdout.write(jsonLine(result), () => process.exit(0));
  // Keep the event loop alive until the write callback exits the process.
  return await new Promise(() => {});
}
