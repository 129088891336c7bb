/**
 * The nucleus's persisted desired state, `$CELL_HOME/nucleus/state.json`: deployments and the
 * processes running them, written atomically so that a nucleus killed at any moment finds
 * either the old file or the new one, and a failed write (a full disk) leaves the old one.
 * Also the `/proc` checks that tell a live instance from a reused pid.
 *
 * @module
 */
import { join } from "node:path";
import { CellError } from "@cell/sdk";

/** A deployment as persisted. */
export interface DeploymentRecord {
  cell: string;
  /** Absolute module path, or a URL. */
  module: string;
  instances: number;
  /** Whether the deployment asked for the sandbox (`false` for `--no-sandbox`). */
  sandbox: boolean;
  args: string[];
  /** The Deno permission flags its instances run with. */
  permissions: string[];
}

/** A running instance as persisted. */
export interface InstanceRecord {
  cell: string;
  instance_id: string;
  /** The instance's process (inside bubblewrap, the sandbox's init, which is the cell). */
  pid: number;
  /** Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22). */
  start_time: number;
}

/** Everything in `state.json`. */
export interface NucleusState {
  version: 1;
  deployments: DeploymentRecord[];
  instances: InstanceRecord[];
}

/** Writes `data` to the new file at `path`, durably; replaceable in tests to fail on purpose. */
export type StateWriter = (path: string, data: Uint8Array) => Promise<void>;

/** Options of {@linkcode StateStore}. */
export interface StateStoreOptions {
  /**
   * How the temporary file is written.
   * @default {writes, then fsyncs}
   */
  writer?: StateWriter;
}

/** Writes `data` to `path` and fsyncs it: the default {@linkcode StateWriter}. */
export async function writeDurably(path: string, data: Uint8Array): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  let written = 0;
  while (written < data.length) written += await file.write(data.subarray(written));
  await file.sync();
}

/**
 * Loads and saves `<home>/nucleus/state.json`. Saves are queued, and each one writes a temporary
 * file, fsyncs it, renames it over the old file and fsyncs the directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StateStore } from "./state.ts";
 * const home = await Deno.makeTempDir();
 * const store = new StateStore(home);
 * await store.save({ version: 1, deployments: [], instances: [] });
 * assert.ok((await store.load()).deployments.length === 0);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export class StateStore {
  /** The state file. */
  readonly path: string;
  readonly #dir: string;
  readonly #writer: StateWriter;
  #queue: Promise<unknown> = Promise.resolve();

  /** A store for the nucleus of `home`. */
  constructor(home: string, options: StateStoreOptions = {}) {
    this.#dir = join(home, "nucleus");
    this.path = join(this.#dir, "state.json");
    this.#writer = options.writer ?? writeDurably;
  }

  /** The persisted state; empty when there is none yet. */
  async load(): Promise<NucleusState> {
    // Temporary files of a nucleus that died while saving.
    try {
      for await (const entry of Deno.readDir(this.#dir)) {
        if (entry.name.startsWith("state.json.tmp-")) {
          await Deno.remove(join(this.#dir, entry.name)).catch(() => {});
        }
      }
    } catch {
      // No directory yet.
    }
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return { version: 1, deployments: [], instances: [] };
      throw e;
    }
    try {
      const state = JSON.parse(text) as NucleusState;
      if (state.version !== 1 || !Array.isArray(state.deployments)) throw new Error("bad shape");
      state.instances ??= [];
      return state;
    } catch (e) {
      throw new CellError(
        "DATA_LOSS",
        `Nucleus state '${this.path}' is corrupt: move it away to start with no deployments`,
        { cause: e },
      );
    }
  }

  /** Replaces the state file with `state`; on failure the old file is left as it was. */
  save(state: NucleusState): Promise<void> {
    const data = new TextEncoder().encode(JSON.stringify(state, null, 2) + "\n");
    const next = this.#queue.then(() => this.#write(data));
    this.#queue = next.catch(() => {});
    return next;
  }

  async #write(data: Uint8Array): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const temp = `${this.path}.tmp-${Deno.pid}`;
    try {
      await this.#writer(temp, data);
      await Deno.rename(temp, this.path);
    } catch (e) {
      await Deno.remove(temp).catch(() => {});
      const full = /os error 28|No space left/i.test(String((e as Error)?.message));
      throw new CellError(
        full ? "RESOURCE_EXHAUSTED" : "UNAVAILABLE",
        `Cannot save the nucleus state to '${this.path}' (${(e as Error)?.message ?? e}); ` +
          "the previous state is kept and nothing changed: " +
          (full
            ? "free space on that disk, then retry"
            : "check that the directory is writable, then retry"),
        { cause: e },
      );
    }
    // The rename is durable only once the directory is.
    try {
      using dir = await Deno.open(this.#dir, { read: true });
      await dir.sync();
    } catch {
      // Some filesystems cannot fsync a directory; the rename has happened regardless.
    }
  }
}

/**
 * Start time of process `pid` in clock ticks since boot, or `undefined` when there is no such
 * process. Together with the pid it names one process: pids are reused, start times are not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { processStartTime } from "./state.ts";
 * assert.ok(processStartTime(Deno.pid)! > 0);
 * ```
 */
export function processStartTime(pid: number): number | undefined {
  if (!(pid > 0)) return undefined;
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined; // A zombie is gone already.
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : undefined;
}

/** The environment of process `pid` (empty when it cannot be read). */
export function processEnv(pid: number): Record<string, string> {
  try {
    const raw = Deno.readFileSync(`/proc/${pid}/environ`);
    const env: Record<string, string> = {};
    for (const entry of new TextDecoder().decode(raw).split("\0")) {
      const eq = entry.indexOf("=");
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    return env;
  } catch {
    return {};
  }
}

/** True when `pid` is still the process started at `startTime` (and, if given, is `instanceId`). */
export function isSameProcess(pid: number, startTime: number, instanceId?: string): boolean {
  if (processStartTime(pid) !== startTime) return false;
  return instanceId === undefined || processEnv(pid).CELL_INSTANCE_ID === instanceId;
}

/** The children of process `pid` (of all its threads). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`);
      children.push(...text.split(" ").filter((s) => s.trim() !== "").map(Number));
    }
  } catch {
    // Gone, or no /proc.
  }
  return children;
}
