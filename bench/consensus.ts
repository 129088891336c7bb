/**
 * `deno task bench:consensus`: the consensus cell against etcd, in one run, with the same load:
 * three members as separate processes on loopback, fsync on, 64 closed-loop writers putting
 * 16-byte values under random keys among 1,000 for 5 s after a 1 s warmup; then the leader is
 * killed with `kill -9` and `failover_ms` is the time to the first write acknowledged after it.
 * Prints one JSON line:
 *
 * `{"cell":{"writes_s","p50_ms","p99_ms","failover_ms"},"etcd":{...},"setup":{...}}`
 *
 * etcd is Debian's `etcd-server` (3.4, installed with apt-get when missing and root) with its
 * defaults: fsync on every commit, 100 ms heartbeat, 1000 ms election timeout. It is driven at
 * its best: through its native Go client (`bench/etcd_load/`, built into
 * `~/.cache/cell/etcd-load`), which outran `fetch` against its JSON gateway here; writes go to
 * the leader. `--etcd-driver fetch`, `--etcd-target all` and `--etcd-conns N` pick the others;
 * `--etcd-compare` measures every driver and target and adds them as `etcd_variants`.
 * `setup.fsync_p50_ms`/`fsync_p99_ms` is the raw `fdatasync` latency of the disk under `--dir`.
 *
 * Options: `--etcd-only` (skip the cell), `--duration-ms N`, `--warmup-ms N`,
 * `--concurrency N`, `--dir PATH` (default /tmp). Progress goes to stderr.
 *
 * @module
 */
import { runCell } from "./_consensus_cell.ts";
import { base64, etcdCall, type EtcdCluster, startEtcdCluster } from "./_etcd.ts";
import {
  cleanupOnSignal,
  type ConsensusLoad,
  type ConsensusResult,
  driveLoad,
  type LoadResult,
  measureFailover,
  percentile,
} from "./_load.ts";

type Driver = "go" | "fetch";
type Target = "leader" | "all";

interface EtcdOptions {
  driver: Driver;
  target: Target;
  /** gRPC connections of the Go driver. */
  conns: number;
}

const FAILOVER_WRITE_TIMEOUT_MS = 250;

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function numberFlag(name: string, fallback: number): number {
  const text = flag(name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${name} must be positive: '${text}'`);
  return n;
}

const log = (message: string) => console.error(`bench:consensus: ${message}`);

/** Builds the Go driver into ~/.cache/cell/etcd-load, once per version of its sources. */
async function buildGoDriver(): Promise<string> {
  const source = new URL("./etcd_load/", import.meta.url).pathname;
  const files = ["main.go", "go.mod", "go.sum"];
  const bytes = files.map((f) => Deno.readFileSync(source + f));
  const joined = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  bytes.reduce((at, b) => (joined.set(b, at), at + b.length), 0);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  const hash = Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
  const cache = `${Deno.env.get("HOME") ?? "/tmp"}/.cache/cell/etcd-load`;
  const binary = `${cache}/etcd-load-${hash}`;
  try {
    Deno.statSync(binary);
    return binary;
  } catch { /* not built yet */ }
  log("building the etcd Go driver (go.etcd.io/etcd/client/v3) ...");
  await Deno.mkdir(cache, { recursive: true });
  const out = await new Deno.Command("go", {
    args: ["build", "-o", binary, "."],
    cwd: source,
    env: { GOFLAGS: "-mod=mod" },
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).output().catch((e) => {
    throw new Error(`Cannot run 'go' to build the etcd driver (or use --etcd-driver fetch): ${e}`);
  });
  if (!out.success) {
    throw new Error(`Building bench/etcd_load failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return binary;
}

async function loadWithGo(
  endpoints: string[],
  load: ConsensusLoad,
  conns: number,
): Promise<LoadResult> {
  const binary = await buildGoDriver();
  const child = new Deno.Command(binary, {
    args: [
      `--endpoints=${endpoints.join(",")}`,
      `--concurrency=${load.concurrency}`,
      `--conns=${conns}`,
      `--duration-ms=${load.durationMs}`,
      `--warmup-ms=${load.warmupMs}`,
      `--keys=${load.keys}`,
      `--value-size=${load.valueSize}`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const done = cleanupOnSignal(() => child.kill("SIGKILL"));
  try {
    const out = await child.output();
    if (!out.success) throw new Error(`The etcd Go driver exited with code ${out.code}`);
    return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  } finally {
    done();
  }
}

/** Request bodies of `/v3/kv/put` for every key, built once so the client spends no CPU on them. */
function putBodies(load: ConsensusLoad): string[] {
  const value = base64(crypto.getRandomValues(new Uint8Array(load.valueSize)));
  return Array.from(
    { length: load.keys },
    (_, i) => JSON.stringify({ key: base64(`bench/${String(i).padStart(4, "0")}`), value }),
  );
}

function loadWithFetch(endpoints: string[], load: ConsensusLoad): Promise<LoadResult> {
  const bodies = putBodies(load);
  let next = 0;
  // Each op goes to the next endpoint in turn: with 64 writers in lockstep that spreads them.
  return driveLoad({
    ...load,
    op: async () => {
      const endpoint = endpoints[next++ % endpoints.length]!;
      const res = await fetch(`${endpoint}/v3/kv/put`, {
        method: "POST",
        body: bodies[Math.floor(Math.random() * bodies.length)]!,
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`put answered ${res.status}`);
    },
  });
}

/** Writers spread over the members still up, each attempt with a short deadline. */
async function etcdFailover(cluster: EtcdCluster, load: ConsensusLoad): Promise<number> {
  const bodies = putBodies(load);
  const leader = await cluster.leader();
  let turn = 0;
  return await measureFailover({
    concurrency: 8,
    killLeader: () => Promise.resolve(cluster.kill(leader)),
    write: async () => {
      const live = cluster.members.filter((m) => !m.killed);
      const endpoint = live[turn++ % live.length]!.endpoint;
      await etcdCall(
        endpoint,
        "/v3/kv/put",
        JSON.parse(bodies[turn % bodies.length]!),
        FAILOVER_WRITE_TIMEOUT_MS,
      );
    },
  });
}

/** Three etcd members, the load, then the failover; the cluster is removed in any case. */
async function runEtcd(load: ConsensusLoad, options: EtcdOptions): Promise<ConsensusResult> {
  await using cluster = await startEtcdCluster({ dir: load.dir });
  const leader = await cluster.leader();
  const endpoints = options.target === "leader" ? [leader.endpoint] : cluster.endpoints;
  log(`etcd: ${options.driver} driver, writes to ${options.target} (${endpoints.join(", ")}) ...`);
  const r = options.driver === "go"
    ? await loadWithGo(endpoints, load, options.conns)
    : await loadWithFetch(endpoints, load);
  log(`etcd: ${JSON.stringify(r)}; failover ...`);
  const failover = await etcdFailover(cluster, load);
  const round2 = (x: number) => Math.round(x * 100) / 100;
  return {
    writes_s: Math.round(r.writes_s),
    p50_ms: round2(r.p50_ms),
    p99_ms: round2(r.p99_ms),
    failover_ms: failover,
  };
}

/** Raw latency of appending 4 KiB and `fdatasync`, what every etcd commit waits for, in `dir`. */
async function measureFsync(dir: string, n = 300): Promise<{ p50_ms: number; p99_ms: number }> {
  const path = await Deno.makeTempFile({ dir, prefix: "cell-bench-fsync-" });
  const done = cleanupOnSignal(() => Deno.remove(path).catch(() => {}));
  try {
    using file = await Deno.open(path, { write: true, append: true });
    const block = new Uint8Array(4096).fill(7);
    const samples = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await file.write(block);
      await file.syncData();
      samples[i] = performance.now() - t0;
    }
    samples.sort();
    const r = (x: number) => Math.round(x * 1000) / 1000;
    return { p50_ms: r(percentile(samples, 0.5)), p99_ms: r(percentile(samples, 0.99)) };
  } finally {
    await Deno.remove(path).catch(() => {});
    done();
  }
}

if (import.meta.main) {
  const load: ConsensusLoad = {
    concurrency: numberFlag("--concurrency", 64),
    durationMs: numberFlag("--duration-ms", 5000),
    warmupMs: numberFlag("--warmup-ms", 1000),
    keys: 1000,
    valueSize: 16,
    dir: flag("--dir") ?? "/tmp",
  };
  const etcdOptions: EtcdOptions = {
    driver: (flag("--etcd-driver") ?? "go") as Driver,
    target: (flag("--etcd-target") ?? "leader") as Target,
    conns: numberFlag("--etcd-conns", 1),
  };
  if (!["go", "fetch"].includes(etcdOptions.driver)) {
    throw new TypeError(`--etcd-driver must be 'go' or 'fetch': '${etcdOptions.driver}'`);
  }
  if (!["leader", "all"].includes(etcdOptions.target)) {
    throw new TypeError(`--etcd-target must be 'leader' or 'all': '${etcdOptions.target}'`);
  }
  const fsync = await measureFsync(load.dir);
  log(`fdatasync of 4 KiB in ${load.dir}: ${JSON.stringify(fsync)}`);
  const result: Record<string, unknown> = {};
  if (!Deno.args.includes("--etcd-only")) {
    log("cell ...");
    result.cell = await runCell(load);
    log(`cell: ${JSON.stringify(result.cell)}`);
  }
  result.etcd = await runEtcd(load, etcdOptions);
  log(`etcd: ${JSON.stringify(result.etcd)}`);
  if (Deno.args.includes("--etcd-compare")) {
    const variants: Record<string, ConsensusResult> = {};
    for (const driver of ["go", "fetch"] as const) {
      for (const target of ["leader", "all"] as const) {
        const conns = driver === "go" && target === "all" ? 3 : etcdOptions.conns;
        variants[`${driver}_${target}`] = await runEtcd(load, { driver, target, conns });
        log(`etcd ${driver}_${target}: ${JSON.stringify(variants[`${driver}_${target}`])}`);
      }
    }
    result.etcd_variants = variants;
  }
  result.setup = {
    etcd_driver: etcdOptions.driver,
    etcd_target: etcdOptions.target,
    concurrency: load.concurrency,
    duration_ms: load.durationMs,
    dir: load.dir,
    fsync_p50_ms: fsync.p50_ms,
    fsync_p99_ms: fsync.p99_ms,
    cpus: navigator.hardwareConcurrency,
  };
  console.log(JSON.stringify(result));
}
