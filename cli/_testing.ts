// Helpers for the CLI's tests: captured IO, a private Cell home, a cell served from the test.
//
// Tests pass `--home DIR` (or CELL_HOME in a subprocess's env) rather than setting CELL_HOME in
// this process: `deno test --parallel` runs test files in one process, so one file's CELL_HOME
// would leak into another's.
import { join } from "node:path";
import { type CellError, method, protein, serve, type Server, service, t } from "@cell/sdk";
import type { CliIo } from "./io.ts";
import { run } from "./mod.ts";

/** What a command printed, and its exit code. */
export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `args` in this process, with `stdin` (if any) as standard input. */
export async function cell(args: string[], stdin?: string): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => stdout += text,
    stderr: (text) => stderr += text,
    readStdin: () => Promise.resolve(stdin),
  };
  const code = await run(args, io);
  return { code, stdout, stderr };
}

/** A fresh directory for a Cell home, removed on dispose. */
export interface TempHome extends AsyncDisposable {
  /** The directory. */
  readonly path: string;
}

/** Makes a fresh Cell home under /tmp (short: socket paths must fit in 107 bytes). */
export async function tempHome(): Promise<TempHome> {
  const path = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-cli-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** Who to greet. */
const Greeting = protein("Greeting", {
  /** The name to put in the greeting. */
  name: t.string(),
  /** How many exclamation marks. */
  excitement: t.optional(t.u8()),
});

/** A greeting, with what the call carried. */
const Greeted = protein("Greeted", {
  /** For example `Hello, World!`. */
  greeting: t.string(),
  /** The call's metadata. */
  metadata: t.map(t.string()),
});

/** Bytes to reverse. */
const Blob = protein("Blob", {
  /** Raw bytes. */
  data: t.bytes(),
  /** Anything: a wide integer comes back as a bigint. */
  extra: t.optional(t.any()),
});

/** A test cell: greets, reverses bytes, and sleeps. */
const TestService = service({
  /** Greets `name`. */
  greet: method(Greeting, Greeted, { idempotent: true }),
  /** Returns the bytes reversed and 2^63 in `extra`. */
  reverse: method(Blob, Blob),
  /** Answers after its deadline has passed. */
  stall: method(Greeting, Greeted),
});

/** Serves the test cell `name` on `$home/run/<name>.sock`, and only there. */
export function serveTestCell(home: string, name: string): Promise<Server> {
  return serve(
    name,
    TestService.implement({
      greet: ({ name, excitement }, { metadata }) => ({
        greeting: `Hello, ${name}${"!".repeat(excitement ?? 1)}`,
        metadata: { ...metadata },
      }),
      reverse: ({ data }) => ({ data: data.slice().reverse(), extra: 2n ** 63n }),
      stall: (_request, { signal }) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => reject(signal.reason as CellError), {
            once: true,
          });
        }),
    }),
    { socket: join(home, "run", `${name}.sock`), inproc: false, handleSignals: false },
  );
}

/** A cell running in a subprocess; killing it waits for it to exit. */
export interface Subprocess extends AsyncDisposable {
  /** The first line it printed. */
  readonly ready: string;
}

/**
 * Starts `examples/my_service/main.ts` with `CELL_HOME=home` and waits for its first line of
 * output, which it prints once it serves.
 */
export async function startMyService(home: string): Promise<Subprocess> {
  const main = new URL("../examples/my_service/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main],
    env: { CELL_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // It has exited already.
    }
    await child.status;
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("my-service did not start in 30 s")), 30_000);
    });
    while (!text.includes("\n")) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`my-service exited before it was ready: ${text}`);
      text += value;
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  // Keep draining its stdout so that it never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done);
  })().catch(() => {});
  return {
    ready: text.slice(0, text.indexOf("\n")),
    [Symbol.asyncDispose]: async () => {
      await stop();
      await drained;
    },
  };
}
