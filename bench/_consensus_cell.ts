/**
 * The Cell half of `deno task bench:consensus`: three consensus-cell members as separate
 * processes (`deno run -A cells/consensus/main.ts`), each with its write-ahead log (fsync on) in
 * a temp dir, at the cell's default heartbeat and election timeout, driven with the same load as
 * etcd (see `_load.ts`) through the client a user would write: one {@linkcode connectConsensus}
 * shared by every writer, which finds the leader and follows it across elections.
 *
 * `BENCH_DEBUG=1` passes the members' stderr through; `BENCH_CPU_PROF=DIR` runs them with
 * `--cpu-prof` and writes their profiles into `DIR` when they stop.
 *
 * @module
 */
import { connectConsensus, type ConsensusClient } from "@cell/consensus";
import {
  cleanupOnSignal,
  type ConsensusLoad,
  type ConsensusResult,
  driveLoad,
  measureFailover,
} from "./_load.ts";

const MAIN = new URL("../cells/consensus/main.ts", import.meta.url).pathname;
const IDS = ["n1", "n2", "n3"];
/** How long a member may take to serve, ms. */
const START_TIMEOUT_MS = 30_000;
/** How long the cluster may take to elect its first leader, ms. */
const LEADER_TIMEOUT_MS = 15_000;
/** How long a member may take to stop cleanly (writing its CPU profile), ms. */
const STOP_TIMEOUT_MS = 5000;
/** Longest Unix socket path with room to spare (the limit is 107 bytes). */
const MAX_SOCKET_PATH = 100;

const log = (message: string) => console.error(`bench:consensus: ${message}`);

interface MemberProcess {
  id: string;
  process: Deno.ChildProcess;
  /** Its stderr, kept to explain a failure. */
  stderr: string[];
  /** Killed or exited. */
  down: boolean;
}

/**
 * Three member processes with their data in a temp dir and their sockets in a temp Cell home
 * (the same dir unless its path is too long for a socket); `stop()` removes every trace.
 */
class CellCluster implements AsyncDisposable {
  readonly home: string;
  readonly data: string;
  readonly members: MemberProcess[] = [];
  readonly #unregister: () => void;
  #stopped: Promise<void> | undefined;

  constructor(data: string, home: string) {
    this.data = data;
    this.home = home;
    this.#unregister = cleanupOnSignal(() => this.#kill());
  }

  static async start(dir: string): Promise<CellCluster> {
    const prefix = "cell-bench-consensus-";
    const data = await Deno.makeTempDir({ dir, prefix });
    const socket = `${data}/run/consensus@${IDS[0]}.sock`;
    const home = socket.length > MAX_SOCKET_PATH ? await Deno.makeTempDir({ prefix }) : data;
    const cluster = new CellCluster(data, home);
    try {
      await Promise.all(IDS.map((id) => cluster.#startMember(id)));
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  async #startMember(id: string): Promise<void> {
    const profile = Deno.env.get("BENCH_CPU_PROF");
    const debug = Boolean(Deno.env.get("BENCH_DEBUG"));
    const process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...(profile
          ? ["--cpu-prof", `--cpu-prof-dir=${profile}`, `--cpu-prof-name=${id}.cpuprofile`]
          : []),
        MAIN,
        "--id",
        id,
        "--members",
        IDS.join(","),
        "--data",
        `${this.data}/data/${id}`,
      ],
      // No nucleus: the members find each other by their instance sockets under this home.
      env: { CELL_HOME: this.home, CELL_NUCLEUS: "0", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const member: MemberProcess = { id, process, stderr: [], down: false };
    this.members.push(member);
    process.status.then(() => member.down = true);
    (async () => {
      for await (const text of process.stderr.pipeThrough(new TextDecoderStream())) {
        if (debug) console.error(text.trimEnd());
        else if (member.stderr.push(text) > 200) member.stderr.shift();
      }
    })().catch(() => {});
    const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const timer = setTimeout(() => member.down || process.kill("SIGKILL"), START_TIMEOUT_MS);
    try {
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) {
          throw new Error(
            `Consensus member ${id} exited before it served:\n${member.stderr.join("")}`,
          );
        }
        text += value;
      }
    } finally {
      clearTimeout(timer);
    }
    (async () => {
      while (!(await reader.read()).done);
    })().catch(() => {});
  }

  /** The member that says it leads, once one is elected. */
  async leader(client: ConsensusClient): Promise<MemberProcess> {
    const deadline = Date.now() + LEADER_TIMEOUT_MS;
    for (;;) {
      const reports = await client.statuses({ timeoutMs: 1000 }).catch(() => []);
      const id = reports.find((r) => r.status?.role === "leader")?.id;
      const leader = this.members.find((m) => m.id === id && !m.down);
      if (leader) return leader;
      if (Date.now() > deadline) throw new Error("The consensus members elected no leader");
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** `kill -9` of one member. */
  kill(member: MemberProcess): void {
    member.down = true;
    member.process.kill("SIGKILL");
  }

  /** Kills every member still up (SIGTERM first when profiling) and removes the dirs. */
  stop(): Promise<void> {
    return this.#stopped ??= (async () => {
      await this.#kill();
      this.#unregister();
    })();
  }

  async #kill(): Promise<void> {
    const graceful = Boolean(Deno.env.get("BENCH_CPU_PROF"));
    for (const m of this.members) {
      if (m.down) continue;
      try {
        m.process.kill(graceful ? "SIGTERM" : "SIGKILL");
      } catch { /* already gone */ }
    }
    const timer = setTimeout(() => {
      for (const m of this.members) {
        try {
          if (!m.down) m.process.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }, STOP_TIMEOUT_MS);
    await Promise.all(this.members.map((m) => m.process.status));
    clearTimeout(timer);
    await Deno.remove(this.data, { recursive: true }).catch(() => {});
    await Deno.remove(this.home, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** A value of `size` characters from a random alphabet. */
function randomValue(size: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(size));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Starts three consensus members under `load.dir`, drives `load` against them with
 * `driveLoad`, measures failover with `measureFailover`, and stops everything (on error too).
 *
 * @example
 * ```ts ignore
 * import { runCell } from "./_consensus_cell.ts";
 * const r = await runCell({ concurrency: 64, durationMs: 5000, warmupMs: 1000, keys: 1000,
 *   valueSize: 16, dir: "/tmp" });
 * ```
 */
export async function runCell(load: ConsensusLoad): Promise<ConsensusResult> {
  await using cluster = await CellCluster.start(load.dir);
  await using client = await connectConsensus({ members: IDS, home: cluster.home });
  const leader = await cluster.leader(client);
  log(`cell: 3 members under ${cluster.data}, leader ${leader.id} ...`);
  const keys = Array.from({ length: load.keys }, (_, i) => `bench/${String(i).padStart(4, "0")}`);
  const value = randomValue(load.valueSize);
  const put = () => client.write({ key: keys[Math.floor(Math.random() * keys.length)]!, value });
  const r = await driveLoad({ ...load, op: async () => void await put() });
  log(`cell: ${JSON.stringify(r)}; failover ...`);
  // The client follows the new leader by itself: writers just keep writing.
  const victim = await cluster.leader(client);
  const failover = await measureFailover({
    concurrency: 8,
    killLeader: () => Promise.resolve(cluster.kill(victim)),
    write: async () => void await put(),
  });
  return {
    writes_s: Math.round(r.writes_s),
    p50_ms: round2(r.p50_ms),
    p99_ms: round2(r.p99_ms),
    failover_ms: failover,
  };
}
