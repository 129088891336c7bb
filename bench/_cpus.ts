/**
 * Where benchmark processes run. On two cores, latency depends on whether client and server
 * share a core, and unpinned runs here were bimodal; so every contender runs its client on CPU
 * 0 and its server on CPU 1 (with `taskset`, when there are two CPUs or more). Set
 * `CELL_BENCH_PIN=0` to run unpinned.
 *
 * @module
 */

/** CPU of every client (the benchmark process itself). */
export const CLIENT_CPU = 0;
/** CPU of every server process. */
export const SERVER_CPU = 1;

let available: boolean | undefined;

/**
 * CPUs online on the machine. Not `navigator.hardwareConcurrency`: that counts the CPUs this
 * process may run on, which is 1 inside a process already pinned by {@linkcode pinSelf}, and
 * servers started from there would silently stay unpinned.
 */
export function onlineCpus(): number {
  try {
    // "0-1", "0,2-3", ...
    let n = 0;
    for (const range of Deno.readTextFileSync("/sys/devices/system/cpu/online").trim().split(",")) {
      const [a, b] = range.split("-").map(Number);
      n += b === undefined ? 1 : b - a! + 1;
    }
    if (n > 0) return n;
  } catch {
    // Not Linux, or no /sys: fall back to what this process sees.
  }
  return navigator.hardwareConcurrency;
}

/** True when processes can be pinned: `taskset` exists, there are 2+ CPUs, not disabled. */
export function canPin(): boolean {
  if (available !== undefined) return available;
  available = false;
  if (Deno.env.get("CELL_BENCH_PIN") === "0" || onlineCpus() < 2) return false;
  try {
    available = new Deno.Command("taskset", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    available = false;
  }
  return available;
}

/** `command args` to run on `cpu` when pinning is possible, else unchanged. */
export function onCpu(cpu: number, command: string, args: string[]): [string, string[]] {
  return canPin() ? ["taskset", ["-c", String(cpu), command, ...args]] : [command, args];
}

/**
 * Re-runs this Deno program pinned to the client CPU, once, and exits with its status; returns
 * normally in the pinned process (or when pinning is not possible).
 */
export async function pinSelf(): Promise<void> {
  if (!canPin() || Deno.env.get("CELL_BENCH_PINNED") === "1") return;
  const [command, args] = onCpu(CLIENT_CPU, Deno.execPath(), [
    "run",
    "-A",
    Deno.mainModule,
    ...Deno.args,
  ]);
  const child = new Deno.Command(command, {
    args,
    env: { CELL_BENCH_PINNED: "1", CELL_BENCH_SERVER_CPU: String(SERVER_CPU) },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const { code } = await child.status;
  Deno.exit(code);
}
