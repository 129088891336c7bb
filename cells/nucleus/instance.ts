/**
 * One supervised instance: a slot of a deployment whose process is started (or adopted from a
 * previous nucleus), watched, restarted with exponential backoff when it exits, and stopped
 * with SIGTERM, then SIGKILL after a grace period.
 *
 * @module
 */
import type { Infer } from "@cell/sdk";
import type { InstanceStatus } from "@cell/sdk/nucleus_api";
import { InstanceLog } from "./logs.ts";
import type { LaunchPlan } from "./sandbox.ts";
import { childPids, type InstanceRecord, isSameProcess, processStartTime } from "./state.ts";

/** Timing of restarts and stops. */
export interface InstanceTiming {
  /** An exit this soon after starting counts as a crash at start (ms). */
  startWindowMs: number;
  /** First restart delay; doubles with each consecutive crash at start (ms). */
  backoffInitialMs: number;
  /** Longest restart delay (ms). */
  backoffMaxMs: number;
  /** Time between SIGTERM and SIGKILL when stopping (ms). */
  stopGraceMs: number;
  /** How often an adopted process (not our child) is checked for life (ms). */
  pollMs: number;
}

/** What an instance needs from its supervisor. */
export interface InstanceHost {
  readonly home: string;
  readonly timing: InstanceTiming;
  /** The command line of this instance, computed afresh at each start. */
  plan(instance: Instance): Promise<LaunchPlan>;
  /** Its process started, exited or was adopted: persist the state. */
  changed(instance: Instance): void;
  /** Its process exited (not called for stops). */
  exited(instance: Instance): void;
  log(message: string): void;
}

type State = Infer<typeof InstanceStatus>["state"];

/**
 * A supervised slot `<cell>-<n>` of a deployment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Instance } from "./instance.ts";
 * assert.ok(typeof Instance === "function");
 * ```
 */
export class Instance {
  readonly cell: string;
  readonly id: string;
  #host: InstanceHost;
  #state: State = "stopped";
  #pid = 0;
  #startTime = 0;
  #wrapperPid = 0;
  #child: Deno.ChildProcess | undefined;
  #log: InstanceLog | undefined;
  #startedAt = 0;
  #restarts = 0;
  #quickExits = 0;
  #lastExitCode: number | undefined;
  #lastError: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #poll: ReturnType<typeof setInterval> | undefined;
  #runningTimer: ReturnType<typeof setTimeout> | undefined;
  #generation = 0;
  #stopping = false;
  #starting: Promise<void> = Promise.resolve();
  #gone: Promise<void> = Promise.resolve();
  #markGone: () => void = () => {};

  /** A slot that runs nothing yet. */
  constructor(host: InstanceHost, cell: string, id: string) {
    this.#host = host;
    this.cell = cell;
    this.id = id;
  }

  /** Its status, as `deployments` reports it. */
  status(): Infer<typeof InstanceStatus> {
    return {
      instance_id: this.id,
      pid: this.#pid,
      state: this.#state,
      restarts: this.#restarts,
      ...(this.#lastExitCode === undefined ? {} : { last_exit_code: this.#lastExitCode }),
      ...(this.#lastError === undefined ? {} : { last_error: this.#lastError }),
    };
  }

  /** The process to persist, when one runs. */
  record(): InstanceRecord | undefined {
    if (this.#pid === 0) return undefined;
    return { cell: this.cell, instance_id: this.id, pid: this.#pid, start_time: this.#startTime };
  }

  /** Starts its process (failures become exits, and so restarts with backoff). */
  start(): Promise<void> {
    this.#stopping = false;
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const generation = ++this.#generation;
    this.#expectExit();
    this.#startedAt = Date.now();
    this.#state = "starting";
    try {
      const plan = await this.#host.plan(this);
      await Deno.mkdir(plan.cwd, { recursive: true, mode: 0o700 });
      this.#log = await InstanceLog.open(this.#host.home, this.cell, this.id);
      const [command, args] = this.#log.wrap(plan.command, plan.args);
      if (generation !== this.#generation || this.#stopping) {
        this.#state = "stopped";
        return this.#markGone();
      }
      await this.#log.capture();
      const child = new Deno.Command(command, {
        args,
        env: plan.env,
        clearEnv: true,
        cwd: plan.cwd,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      this.#child = child;
      this.#wrapperPid = child.pid;
      this.#pid = plan.sandbox === "bwrap" ? await sandboxedPid(child.pid) : child.pid;
      this.#startTime = processStartTime(this.#pid) ?? 0;
      child.status.then((s) => this.#onExit(generation, s.code, s.signal));
    } catch (e) {
      await this.#log?.finish();
      this.#onExit(generation, undefined, null, `could not start: ${(e as Error).message}`);
      return;
    }
    this.#host.changed(this);
    this.#runningTimer = setTimeout(() => {
      if (generation === this.#generation && this.#state === "starting") this.#state = "running";
    }, this.#host.timing.startWindowMs);
  }

  /**
   * Takes over a process a previous nucleus started, if `record` still names a live process
   * with this instance's id; false otherwise.
   */
  async adopt(record: InstanceRecord): Promise<boolean> {
    if (!isSameProcess(record.pid, record.start_time, this.id)) return false;
    const generation = ++this.#generation;
    this.#expectExit();
    this.#pid = record.pid;
    this.#wrapperPid = 0;
    this.#startTime = record.start_time;
    this.#startedAt = Date.now() - this.#host.timing.startWindowMs;
    this.#state = "running";
    this.#log = await InstanceLog.open(this.#host.home, this.cell, this.id);
    await this.#log.capture();
    this.#poll = setInterval(() => {
      if (!isSameProcess(this.#pid, this.#startTime)) this.#onExit(generation, undefined, null);
    }, this.#host.timing.pollMs);
    return true;
  }

  /** Stops its process: SIGTERM, then SIGKILL after the grace period; no restart follows. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    await this.#starting;
    if (this.#pid === 0 && this.#child === undefined) {
      this.#state = "stopped";
      return;
    }
    this.#signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#signal("SIGKILL");
        resolve();
      }, this.#host.timing.stopGraceMs);
    });
    await Promise.race([this.#gone, killed]);
    clearTimeout(timer);
    await this.#gone;
    this.#state = "stopped";
  }

  /** Stops watching its process and leaves it running, for the next nucleus to adopt. */
  async release(): Promise<void> {
    this.#generation++;
    clearTimeout(this.#timer);
    clearTimeout(this.#runningTimer);
    clearInterval(this.#poll);
    this.#child?.unref();
    await this.#log?.close();
  }

  #expectExit(): void {
    this.#gone = new Promise((resolve) => this.#markGone = resolve);
  }

  #signal(signal: Deno.Signal): void {
    const pids = signal === "SIGKILL" && this.#wrapperPid !== this.#pid
      ? [this.#pid, this.#wrapperPid]
      : [this.#pid];
    for (const pid of pids) {
      if (pid > 0 && processStartTime(pid) !== undefined) {
        try {
          Deno.kill(pid, signal);
        } catch {
          // Gone meanwhile.
        }
      }
    }
  }

  async #onExit(generation: number, code?: number, signal?: Deno.Signal | null, error?: string) {
    if (generation !== this.#generation) return;
    this.#generation++;
    clearInterval(this.#poll);
    clearTimeout(this.#runningTimer);
    // If only the sandbox's outer process died (Ctrl-C reaches bubblewrap, not the cell in its
    // own session), the cell inside must not outlive it: let it drain and remove its socket
    // first, and kill it only if it does not exit within the grace period.
    if (this.#pid !== this.#wrapperPid && isSameProcess(this.#pid, this.#startTime)) {
      const pid = this.#pid;
      const startTime = this.#startTime;
      const send = (signal: Deno.Signal) => {
        try {
          Deno.kill(pid, signal);
        } catch {
          // Gone meanwhile.
        }
      };
      send("SIGTERM");
      const until = Date.now() + this.#host.timing.stopGraceMs;
      while (isSameProcess(pid, startTime) && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      if (isSameProcess(pid, startTime)) send("SIGKILL");
    }
    const uptime = Date.now() - this.#startedAt;
    this.#child = undefined;
    this.#pid = this.#wrapperPid = 0;
    await this.#log?.finish();
    this.#lastExitCode = code;
    this.#markGone();
    this.#host.exited(this);
    if (this.#stopping) {
      this.#state = "stopped";
      this.#host.changed(this);
      return;
    }
    const timing = this.#host.timing;
    const quick = uptime < timing.startWindowMs;
    this.#quickExits = quick ? this.#quickExits + 1 : 0;
    const delay = Math.min(
      timing.backoffInitialMs * 2 ** Math.max(0, this.#quickExits - 1),
      timing.backoffMaxMs,
    );
    const how = error ?? describeExit(code, signal);
    const when = quick
      ? `within ${Math.ceil(timing.startWindowMs / 1000)} s of starting, ${this.#quickExits} ` +
        (this.#quickExits === 1 ? "time" : "times")
      : `after ${Math.round(uptime / 1000)} s`;
    this.#lastError = `${how} ${when}: see \`cell logs ${this.cell}\``;
    this.#restarts++;
    this.#state = "backoff";
    this.#host.log(`${this.id} ${this.#lastError}; restarting in ${delay} ms`);
    this.#host.changed(this);
    this.#timer = setTimeout(() => this.start(), delay);
  }
}

const SIGNAL_NAMES: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  11: "SIGSEGV",
  13: "SIGPIPE",
  15: "SIGTERM",
};

/** Words for an exit: by code, by signal, or unknown (an adopted process). */
function describeExit(code: number | undefined, signal: Deno.Signal | null | undefined): string {
  if (signal) return `killed by ${signal}`;
  if (code === undefined) return "exited (exit code unknown: it was adopted)";
  // Bubblewrap reports a cell killed by a signal as exit code 128 + the signal's number.
  const name = SIGNAL_NAMES[code - 128];
  if (name) return `killed by ${name} (exit code ${code})`;
  return `exited with code ${code}`;
}

/**
 * The pid of the cell inside bubblewrap's outer process: with `--as-pid-1` its only child.
 * Waits briefly for bubblewrap to create it; the outer pid if it never does.
 */
async function sandboxedPid(outer: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const [inner] = childPids(outer);
    if (inner !== undefined) return inner;
    if (processStartTime(outer) === undefined) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return outer;
}
