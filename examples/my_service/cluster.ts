/**
 * A local cluster for the example: a nucleus process and `my-service` deployed under it, driven
 * through the `cell` CLI exactly as a user would type it. Shared by `deno task demo` (which
 * runs it start to finish in a temporary home) and `deno task start` (which keeps it running
 * until Ctrl-C).
 *
 * @module
 */
import { run } from "@cell/cli";

const here = new URL(".", import.meta.url);
const repo = new URL("../../", here);

/** Where the cluster writes what it does. */
export interface ClusterIo {
  /** A command's output, as the user would see it. */
  out(text: string): void;
  /** Progress notes. */
  note(text: string): void;
}

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions {
  /** The Cell home. */
  home: string;
  /**
   * Instances of `my-service`.
   * @default {3}
   */
  instances?: number;
  /** Where to report. */
  io: ClusterIo;
  /**
   * Longest wait for the nucleus and the instances (ms).
   * @default {60000}
   */
  readyTimeoutMs?: number;
}

/** A running cluster. */
export interface Cluster {
  /** The nucleus's process id. */
  readonly nucleusPid: number;
  /** Runs `cell <args>` against this cluster, echoing the command line; returns its exit code. */
  cell(args: string[], options?: { quiet?: boolean }): Promise<number>;
  /** Runs `cell <args> --json` quietly and parses what it prints. */
  json<T>(args: string[]): Promise<T>;
  /** Stops `my-service`, then the nucleus (SIGTERM: it stops what it runs and exits). */
  stop(): Promise<void>;
}

interface Instance {
  instance_id: string;
  pid: number;
  health: string;
}

/** The first line a stream prints; the rest is passed to `rest` line by line. */
async function firstLine(
  stream: ReadableStream<Uint8Array>,
  rest: (line: string) => void,
): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the nucleus exited before it was ready: see its messages above");
    text += value;
  }
  (async () => {
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      for (const line of r.value.split("\n")) if (line) rest(line);
    }
  })().catch(() => {});
  return text.slice(0, text.indexOf("\n"));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)
    ),
  ]).finally(() => clearTimeout(timer));
}

/** Whether process `pid` still runs (a zombie waiting to be reaped does not). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * Initialises `home` as node 1 (if it is not yet), starts a nucleus on it, deploys
 * `my-service` with `instances` instances, and waits until every instance is registered and
 * healthy.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const { home, io } = options;
  const instances = options.instances ?? 3;
  const timeoutMs = options.readyTimeoutMs ?? 60_000;
  const cliIo = { stdout: io.out, stderr: io.out };
  const quietIo = { stdout: () => {}, stderr: io.out };

  const cell = (args: string[], { quiet = false } = {}) => {
    if (!quiet) io.out(`$ cell ${args.join(" ")}\n`);
    return run(["--home", home, ...args], quiet ? quietIo : cliIo);
  };
  const json = async <T>(args: string[]): Promise<T> => {
    let text = "";
    const code = await run(["--home", home, ...args, "--json"], {
      stdout: (t) => text += t,
      stderr: io.out,
    });
    // Some commands exit 1 with a valid answer (`discover` finding nobody, `health` degraded).
    if (text === "") throw new Error(`cell ${args.join(" ")} exited with code ${code}`);
    return JSON.parse(text) as T;
  };

  const config = await Deno.stat(`${home}/config.json`).then(() => true, () => false);
  if (!config && await cell(["init", "--node-id", "1"]) !== 0) {
    throw new Error(`cell init failed on ${home}`);
  }

  io.out(`$ cell nucleus &\n`);
  const nucleus = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("cli/main.ts", repo).pathname, "--home", home, "nucleus"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stopNucleus = async () => {
    try {
      nucleus.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const status = await withTimeout(nucleus.status, 20_000, "stopping the nucleus").catch(
      () => {
        nucleus.kill("SIGKILL");
        return nucleus.status;
      },
    );
    if (!status.success) throw new Error(`the nucleus exited with code ${status.code}`);
  };
  (async () => {
    for await (const chunk of nucleus.stderr.pipeThrough(new TextDecoderStream())) {
      for (const line of chunk.split("\n")) if (line) io.note(`nucleus: ${line}`);
    }
  })().catch(() => {});
  try {
    io.out(
      `${await withTimeout(
        firstLine(nucleus.stdout, io.note),
        timeoutMs,
        "starting the nucleus",
      )}\n`,
    );

    const module = new URL("main.ts", here).pathname;
    if (await cell(["deploy", "my-service", module, "--instances", String(instances)]) !== 0) {
      throw new Error("cell deploy failed: see its message above");
    }

    io.note(`waiting for ${instances} healthy instances of my-service`);
    const started = Date.now();
    await withTimeout(
      (async () => {
        for (;;) {
          const found = await json<{ instances: Instance[] }>(["discover", "my-service"]);
          if (found.instances.filter((i) => i.health === "healthy").length >= instances) return;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })(),
      timeoutMs,
      `waiting for ${instances} healthy instances`,
    );
    io.note(`${instances} instances healthy after ${Date.now() - started} ms`);
  } catch (e) {
    await stopNucleus().catch(() => {});
    throw e;
  }

  return {
    nucleusPid: nucleus.pid,
    cell,
    json,
    async stop() {
      const pids = (await json<{ instances: Instance[] }>(["discover", "my-service", "--all"])
        .catch(() => ({ instances: [] as Instance[] }))).instances.map((i) => i.pid);
      // Ctrl-C reaches the nucleus too (same process group): it may be stopping already.
      if (alive(nucleus.pid)) await cell(["stop", "my-service"]).catch(() => 1);
      await stopNucleus();
      // Instances exit as they finish draining: give them the nucleus's grace period.
      const until = Date.now() + 6000;
      while (pids.some(alive) && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const left = pids.filter(alive);
      if (left.length > 0) throw new Error(`instances still running after stop: ${left}`);
    },
  };
}
