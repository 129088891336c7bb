/**
 * Cell's own contenders in `bench:rpc`: the greet call in-process, and over a Unix socket to a
 * server in a separate process (one at a time, and with 64 in flight on one connection).
 *
 * Usage: `deno run -A bench/cell_rpc.ts [--iterations N] [--duration-ms N] ...` prints one JSON
 * line `{"inproc":{...},"uds":{...}}`.
 *
 * @module
 */
import { type Client, connect, serve } from "@cell/sdk";
import {
  type BenchOptions,
  DEFAULT_OPTIONS,
  jsonLine,
  measureLatency,
  measureThroughput,
  parseBenchOptions,
} from "./_measure.mjs";
import { BenchGreeter, greeter } from "./_greeter.ts";
import { onCpu, pinSelf, SERVER_CPU } from "./_cpus.ts";
import { waitReady } from "./_ready.ts";

const REQUEST = { name: "World" };

/** In-process calls per second with 64 in flight, plus one-at-a-time latency. */
export async function measureInproc(opts: BenchOptions): Promise<Record<string, number>> {
  const server = await serve("bench-inproc", greeter, { socket: false, handleSignals: false });
  try {
    const client = await connect("bench-inproc", { service: BenchGreeter });
    const call = () => client.greet(REQUEST);
    const latency = await measureLatency(call, opts);
    const throughput = await measureThroughput(call, opts);
    await client.$close();
    return { ops_s: throughput.ops_s, p50_us: latency.p50_us, p99_us: latency.p99_us };
  } finally {
    await server.shutdown();
  }
}

/** A greet server in its own process, and a Cell client connected to it over a Unix socket. */
export interface UdsGreeter extends AsyncDisposable {
  /** One greet call. */
  call(): Promise<unknown>;
}

/** Starts `_greeter.ts` in a separate process (own CELL_HOME) and connects to it. */
export async function startUdsGreeter(): Promise<UdsGreeter> {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-bench-" });
  const [command, args] = onCpu(SERVER_CPU, Deno.execPath(), [
    "run",
    "-A",
    new URL("./_greeter.ts", import.meta.url).pathname,
  ]);
  const server = new Deno.Command(command, {
    args,
    env: { CELL_HOME: home },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let client: Client<typeof BenchGreeter> | undefined;
  const close = async () => {
    await client?.$close();
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
    await Deno.remove(home, { recursive: true });
  };
  try {
    await waitReady(server, "bench-greeter server");
    const connected = await connect("bench-greeter", { service: BenchGreeter, home });
    client = connected;
    return { call: () => connected.greet(REQUEST), [Symbol.asyncDispose]: close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Unix-socket latency and throughput against a server in another process. */
export async function measureUds(opts: BenchOptions): Promise<Record<string, number>> {
  await using greeter = await startUdsGreeter();
  const latency = await measureLatency(greeter.call, opts);
  const throughput = await measureThroughput(greeter.call, opts);
  return {
    p50_us: latency.p50_us,
    p99_us: latency.p99_us,
    p999_us: latency.p999_us,
    ops_s_64: throughput.ops_s,
  };
}

if (import.meta.main) {
  await pinSelf();
  const opts = {
    ...DEFAULT_OPTIONS,
    ...parseBenchOptions(Deno.args, (k: string) => Deno.env.get(k)),
  };
  const inproc = await measureInproc(opts);
  const uds = await measureUds(opts);
  await Deno.stdout.write(new TextEncoder().encode(jsonLine({ inproc, uds })));
}
