/**
 * Captured output of instances: each instance writes its stdout and stderr into named pipes
 * in `$CELL_HOME/logs/<cell>/`, which the nucleus reads and appends, a timestamp per line, to
 * `<instance>.out` and `<instance>.err`, rotating each to `.1` past a size cap. The instance
 * holds its pipe ends open read-write, so a nucleus that dies never breaks its output (writes
 * block once the 64 KiB pipe buffer fills), and a restarted nucleus resumes reading.
 *
 * @module
 */
import { join } from "node:path";
import type { Infer } from "@cell/sdk";
import type { LogLine } from "@cell/sdk/nucleus_api";

/** Default size of a log file before it rotates to `.1` (bytes). */
export const DEFAULT_MAX_LOG_BYTES = 1024 * 1024;

/** Longest line kept; longer ones are split. */
const MAX_LINE = 16 * 1024;

/** Default number of lines `readLogs` returns. */
export const DEFAULT_TAIL = 200;

type Stream = "stdout" | "stderr";
const SUFFIX: Record<Stream, string> = { stdout: "out", stderr: "err" };

/** The log directory of a cell: `<home>/logs/<cell>`. */
export function logDir(home: string, cell: string): string {
  return join(home, "logs", cell);
}

/** The files and pipes of one instance's stream. */
export function logPaths(home: string, cell: string, instanceId: string, stream: Stream): {
  file: string;
  fifo: string;
} {
  const base = join(logDir(home, cell), `${instanceId}.${SUFFIX[stream]}`);
  return { file: base, fifo: `${base}.pipe` };
}

/** Creates a named pipe unless one is there already. */
async function ensureFifo(path: string): Promise<void> {
  try {
    const info = await Deno.lstat(path);
    if (info.isFifo) return;
    await Deno.remove(path);
  } catch {
    // Not there.
  }
  const { success, stderr } = await new Deno.Command("mkfifo", {
    args: ["-m", "600", path],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`Cannot create pipe '${path}': ${new TextDecoder().decode(stderr).trim()}`);
  }
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/**
 * Captures one instance's stdout and stderr. {@linkcode InstanceLog.wrap} turns its command
 * into one whose output goes to the pipes; {@linkcode InstanceLog.capture} reads them until
 * {@linkcode InstanceLog.finish} (the instance exited) or {@linkcode InstanceLog.close} (the
 * nucleus leaves it running).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InstanceLog, readLogs } from "./logs.ts";
 * const home = await Deno.makeTempDir();
 * const log = await InstanceLog.open(home, "doc", "doc-0");
 * const [command, args] = log.wrap("/bin/echo", ["hello"]);
 * await log.capture();
 * await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output();
 * await log.finish();
 * assert.ok((await readLogs(home, "doc", {}))[0]?.line === "hello");
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export class InstanceLog {
  readonly #paths: Record<Stream, { file: string; fifo: string }>;
  readonly #maxBytes: number;
  #keepers: Deno.FsFile[] = [];
  #closing = false;
  /** Resolves once both streams are read to their end (or closed). */
  done: Promise<void> = Promise.resolve();

  /** The log of one instance; {@linkcode InstanceLog.open} also creates its pipes. */
  constructor(home: string, cell: string, instanceId: string, maxBytes = DEFAULT_MAX_LOG_BYTES) {
    this.#paths = {
      stdout: logPaths(home, cell, instanceId, "stdout"),
      stderr: logPaths(home, cell, instanceId, "stderr"),
    };
    this.#maxBytes = maxBytes;
  }

  /** Prepares the log directory and pipes of an instance. */
  static async open(
    home: string,
    cell: string,
    instanceId: string,
    maxBytes: number = DEFAULT_MAX_LOG_BYTES,
  ): Promise<InstanceLog> {
    await Deno.mkdir(logDir(home, cell), { recursive: true, mode: 0o700 });
    const log = new InstanceLog(home, cell, instanceId, maxBytes);
    await ensureFifo(log.#paths.stdout.fifo);
    await ensureFifo(log.#paths.stderr.fifo);
    return log;
  }

  /**
   * `command args` run through `sh`, which points stdout and stderr at the pipes, then execs,
   * through `setsid` when there is one: an instance leaves the terminal's session, so Ctrl-C on
   * the nucleus reaches only the nucleus, which then stops its instances gracefully.
   */
  wrap(command: string, args: string[]): [string, string[]] {
    const out = shellQuote(this.#paths.stdout.fifo);
    const err = shellQuote(this.#paths.stderr.fifo);
    // sh is not a process-group leader, so setsid(1) execs in place: the pid stays the same.
    return ["/bin/sh", [
      "-c",
      `unset PWD OLDPWD; command -v setsid >/dev/null && exec setsid "$@" 1<>${out} 2<>${err}; ` +
      `exec "$@" 1<>${out} 2<>${err}`,
      "sh",
      command,
      ...args,
    ]];
  }

  /**
   * Opens both pipes and starts copying them into the log files. Call it before starting the
   * instance: the nucleus holds a write end of each pipe too, so that reading neither blocks
   * nor ends before the instance has opened its own; {@linkcode InstanceLog.finish} lets go.
   */
  async capture(): Promise<void> {
    this.#closing = false;
    const streams = ["stdout", "stderr"] as const;
    const opened = await Promise.all(streams.map(async (stream) => {
      const fifo = this.#paths[stream].fifo;
      const reading = Deno.open(fifo, { read: true });
      const keeper = await Deno.open(fifo, { write: true });
      return { pipe: await reading, keeper };
    }));
    this.#keepers = opened.map((o) => o.keeper);
    this.done = Promise.all(opened.map((o, i) => this.#pump(streams[i]!, o.pipe))).then(() => {});
  }

  /**
   * The instance exited: copies what it left in the pipes, then stops (after `timeoutMs` at
   * most, should a child of the instance still hold its output open).
   */
  async finish(timeoutMs = 1000): Promise<void> {
    this.#dropKeepers();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.done, new Promise((r) => timer = setTimeout(r, timeoutMs))]);
    clearTimeout(timer);
  }

  /** Stops reading while the instance keeps running: its output waits in the pipe for the next nucleus. */
  async close(): Promise<void> {
    this.#closing = true;
    // A reader blocks in read() until data arrives: wake it with a NUL byte (dropped).
    for (const keeper of this.#keepers) await keeper.write(new Uint8Array([0])).catch(() => 0);
    this.#dropKeepers();
    await this.done;
  }

  #dropKeepers(): void {
    for (const keeper of this.#keepers) {
      try {
        keeper.close();
      } catch {
        // Closed already.
      }
    }
    this.#keepers = [];
  }

  async #pump(stream: Stream, pipe: Deno.FsFile): Promise<void> {
    const path = this.#paths[stream].file;
    let file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
    let size = (await file.stat()).size;
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    let pending = "";
    const writeLines = async (lines: string[]) => {
      if (lines.length === 0) return;
      const at = Date.now();
      const bytes = encoder.encode(lines.map((l) => `${at} ${l}\n`).join(""));
      await file.write(bytes);
      size += bytes.length;
      if (size > this.#maxBytes) {
        file.close();
        await Deno.rename(path, `${path}.1`);
        file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
        size = 0;
      }
    };
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await pipe.read(buffer);
        if (n === null) break;
        pending += decoder.decode(buffer.subarray(0, n), { stream: true }).replaceAll("\0", "");
        const parts = pending.split("\n");
        pending = parts.pop()!;
        while (pending.length > MAX_LINE) {
          parts.push(pending.slice(0, MAX_LINE));
          pending = pending.slice(MAX_LINE);
        }
        await writeLines(parts.map((l) => l.replace(/\r$/, "")));
        if (this.#closing) break;
      }
      if (pending !== "") await writeLines([pending]);
    } finally {
      pipe.close();
      file.close();
    }
  }
}

/** Which lines {@linkcode readLogs} returns. */
export interface ReadLogsOptions {
  /** Only this instance's lines. */
  instanceId?: string;
  /**
   * The last this many lines (all instances and streams merged by time).
   * @default {200}
   */
  tail?: number;
}

/**
 * The captured lines of a cell's instances, oldest first, from the current and rotated files.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLogs } from "./logs.ts";
 * assert.ok((await readLogs("/nonexistent", "nothing", {})).length === 0);
 * ```
 */
export async function readLogs(
  home: string,
  cell: string,
  options: ReadLogsOptions,
): Promise<Infer<typeof LogLine>[]> {
  const dir = logDir(home, cell);
  const files: { path: string; instanceId: string; stream: Stream; rotated: boolean }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = /^(.+)\.(out|err)(\.1)?$/.exec(entry.name);
      if (!m || !entry.isFile) continue;
      if (options.instanceId !== undefined && m[1] !== options.instanceId) continue;
      files.push({
        path: join(dir, entry.name),
        instanceId: m[1]!,
        stream: m[2] === "out" ? "stdout" : "stderr",
        rotated: m[3] !== undefined,
      });
    }
  } catch {
    return [];
  }
  // Rotated files first, so that lines of equal time keep their order.
  files.sort((a, b) => Number(b.rotated) - Number(a.rotated) || a.path.localeCompare(b.path));
  const lines: Infer<typeof LogLine>[] = [];
  for (const f of files) {
    const text = await Deno.readTextFile(f.path).catch(() => "");
    for (const raw of text.split("\n")) {
      const space = raw.indexOf(" ");
      if (space < 0) continue;
      const at = Number(raw.slice(0, space));
      if (!Number.isFinite(at)) continue;
      lines.push({
        instance_id: f.instanceId,
        stream: f.stream,
        at_ms: at,
        line: raw.slice(space + 1),
      });
    }
  }
  const order = new Map(lines.map((l, i) => [l, i]));
  lines.sort((a, b) => a.at_ms - b.at_ms || order.get(a)! - order.get(b)!);
  const tail = options.tail ?? DEFAULT_TAIL;
  return tail >= lines.length ? lines : lines.slice(lines.length - tail);
}
