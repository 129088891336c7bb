/**
 * Cell over the shared-memory ring in `bench:rpc`: the greet call to a server in another
 * process (pinned to the server CPU), one at a time and with 64 in flight, and the latency of
 * the first call after both sides went idle and parked (`idle_wake_us`).
 *
 * Usage: `deno run -A bench/shm.ts [--iterations N] [--duration-ms N] ...` prints one JSON
 * line `{"shm":{...}}`. Run with `--server HOME ADDRESS` it is the server. Set
 * `CELL_BENCH_PROFILE=<dir>` for a CPU profile of the server.
 *
 * @module
 */
import { connect, serve } from "@cell/sdk";
import { shmTransport } from "../sdk/shm.ts";
import {
  type BenchOptions,
  DEFAULT_OPTIONS,
  jsonLine,
  measureLatency,
  measureThroughput,
  parseBenchOptions,
} from "./_measure.mjs";
import { BenchGreeter, greeter } from "./_greeter.ts";
import { pinSelf } from "./_cpus.ts";
import { onServerCpu } from "./shm_cpus.ts";
import { waitReady } from "./_ready.ts";

const REQUEST = { name: "World" };
/** Calls made one at a time, untimed, before the latency run (see measureShm). */
const SEQUENTIAL_WARMUP_MS = 2000;

/** A greet server in its own process, and a Cell client connected to it over the ring. */
export interface ShmGreeter extends AsyncDisposable {
  /** One greet call. */
  call(): Promise<unknown>;
}

/** Starts this file as a greet server on the ring in another process, and connects to it. */
export async function startShmGreeter(): Promise<ShmGreeter> {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-bench-shm-" });
  const address = `${home}/bench-shm.ring`;
  const profile = Deno.env.get("CELL_BENCH_PROFILE");
  const [command, args] = onServerCpu(Deno.execPath(), [
    "run",
    "-A",
    // CELL_BENCH_PROFILE=<dir>: write the server's CPU profile there when it exits.
    ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []),
    new URL(import.meta.url).pathname,
    "--server",
    home,
    address,
  ]);
  const server = new Deno.Command(command, {
    args,
    env: { CELL_HOME: home, CELL_SHM: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let close = async () => {
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
    await Deno.remove(home, { recursive: true });
  };
  try {
    await waitReady(server, "bench shm server");
    // With the service, as the SDK documents for typed clients: compiled codecs.
    const client = await connect("bench-shm", {
      service: BenchGreeter,
      transport: shmTransport,
      address,
    });
    const stop = close;
    close = async () => {
      await client.$close();
      await stop();
    };
    return { call: () => client.greet(REQUEST), [Symbol.asyncDispose]: () => close() };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Latency of the first call after `idleMs` of silence (both sides parked), median of `n`. */
async function idleWake(call: () => Promise<unknown>, n = 5, idleMs = 1200): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    await new Promise((r) => setTimeout(r, idleMs));
    const t0 = performance.now();
    await call();
    samples.push((performance.now() - t0) * 1000);
  }
  samples.sort((a, b) => a - b);
  return Math.round(samples[Math.floor(n / 2)]! * 10) / 10;
}

/** Ring latency, throughput with 64 in flight, and wake-up latency after idling. */
export async function measureShm(opts: BenchOptions): Promise<Record<string, number>> {
  await using greeter = await startShmGreeter();
  // Warm both processes under load first (untimed, `warmupMs` with 64 in flight): measured
  // from a cold start, the latency run also times the JIT tiering up both sides on their pinned
  // cores (p50 2.6 µs instead of 1.6 µs here), however many sequential warmup calls it makes.
  await measureThroughput(greeter.call, { ...opts, warmupMs: 0, durationMs: opts.warmupMs });
  // Then one call at a time: the latency run's own warmup is a count of calls sized for Unix
  // sockets (2000 calls, ~80 ms there), ~2 ms here. Measured on this project's 2-vCPU VMs,
  // after an idle spell the first ~0.5-1 s of both pinned CPUs busy gave p50 1.5-1.6 µs, the
  // same processes ~0.9 µs afterwards (the host's doing: a new process started then was at
  // 0.9 µs at once), and V8 still tiers the sequential path up on background threads.
  for (const until = performance.now() + SEQUENTIAL_WARMUP_MS; performance.now() < until;) {
    await greeter.call();
  }
  const latency = await measureLatency(greeter.call, opts);
  const throughput = await measureThroughput(greeter.call, opts);
  return {
    p50_us: latency.p50_us,
    p99_us: latency.p99_us,
    p999_us: latency.p999_us,
    ops_s_64: throughput.ops_s,
    idle_wake_us: await idleWake(greeter.call),
  };
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--server");
  if (at >= 0) {
    const [home, address] = [Deno.args[at + 1]!, Deno.args[at + 2]!];
    const server = await serve("bench-shm", greeter, {
      home,
      inproc: false,
      endpoints: [{ transport: shmTransport, address }],
    });
    console.log("ready");
    await server.finished;
  } else {
    await pinSelf();
    const opts = {
      ...DEFAULT_OPTIONS,
      ...parseBenchOptions(Deno.args, (k: string) => Deno.env.get(k)),
    };
    await Deno.stdout.write(new TextEncoder().encode(jsonLine({ shm: await measureShm(opts) })));
  }
}
