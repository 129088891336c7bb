// Helpers for the lifecycle tests: find the instance processes of a Cell home, wait, clean up.
import { tempCellHome } from "@cell/sdk/testing";
import { findBwrap, sandboxProblem } from "../sandbox.ts";
import { Supervisor, type SupervisorOptions } from "../supervisor.ts";

/** The probe cell (reports env, secret file and TCP access, then runs until SIGTERM). */
export const PROBE = new URL("./probe/probe.ts", import.meta.url).pathname;
/** A cell that exits with code 3 as soon as it starts. */
export const CRASH = new URL("./crash.ts", import.meta.url).pathname;

/** Fast timing for tests. */
export const TIMING = {
  startWindowMs: 1500,
  backoffInitialMs: 200,
  backoffMaxMs: 3000,
  stopGraceMs: 3000,
  pollMs: 100,
};

/** A live instance process: the cell itself, not bubblewrap's outer process. */
export interface LiveInstance {
  pid: number;
  instanceId: string;
  env: Record<string, string>;
}

function environ(pid: number): Record<string, string> | undefined {
  try {
    const env: Record<string, string> = {};
    const text = new TextDecoder().decode(Deno.readFileSync(`/proc/${pid}/environ`));
    for (const entry of text.split("\0")) {
      const eq = entry.indexOf("=");
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    if (/\) [ZX] /.test(stat)) return undefined;
    return env;
  } catch {
    return undefined;
  }
}

function comm(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

/** Every live process whose environment names `home` as CELL_HOME and has an instance id. */
export function liveInstances(home: string): LiveInstance[] {
  const found: LiveInstance[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    const env = environ(pid);
    if (env?.CELL_HOME !== home || !env.CELL_INSTANCE_ID) continue;
    if (comm(pid) === "bwrap" || comm(pid) === "sh") continue;
    found.push({ pid, instanceId: env.CELL_INSTANCE_ID, env });
  }
  return found.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
}

/** Kills every process of `home` (the safety net behind each test). */
export function killAll(home: string): void {
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    if (environ(pid)?.CELL_HOME === home) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone.
      }
    }
  }
}

/** Waits until `condition()` holds, polling every 50 ms. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A supervisor on a temporary home, shut down (and every process killed) on dispose. */
export interface Fixture extends AsyncDisposable {
  home: string;
  supervisor: Supervisor;
  messages: string[];
  /** Another supervisor on the same home, disposed with the fixture. */
  another(options?: Partial<SupervisorOptions>): Supervisor;
}

/** Starts a supervisor on a fresh temporary CELL_HOME. */
export async function fixture(options: Partial<SupervisorOptions> = {}): Promise<Fixture> {
  const home = await tempCellHome();
  const messages: string[] = [];
  const supervisors: Supervisor[] = [];
  const make = (more: Partial<SupervisorOptions> = {}) => {
    const s = new Supervisor({
      home: home.path,
      nodeId: "n7",
      log: (m) => messages.push(m),
      timing: TIMING,
      ...options,
      ...more,
    });
    supervisors.push(s);
    return s;
  };
  const supervisor = make();
  await supervisor.start();
  return {
    home: home.path,
    supervisor,
    messages,
    another: make,
    async [Symbol.asyncDispose]() {
      for (const s of supervisors) await s.shutdown({ stopInstances: true }).catch(() => {});
      killAll(home.path);
      await waitFor("every process to end", () => liveInstances(home.path).length === 0);
      await home.cleanup();
    },
  };
}

/** Whether deployments here can be sandboxed: bubblewrap installed and able to run. */
export const SANDBOX: boolean = findBwrap() !== undefined && (await sandboxProblem()) === undefined;
