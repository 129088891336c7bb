/**
 * etcd for `deno task bench:consensus`: installing it (Debian's `etcd-server`, 3.4), running a
 * three-member cluster on loopback with etcd's defaults (fsync on every commit, 100 ms heartbeat,
 * 1000 ms election timeout), and talking to it through its gRPC-gateway JSON API.
 *
 * @module
 */

import { cleanupOnSignal } from "./_load.ts";

const ETCD_PATHS = ["/usr/bin/etcd", "/usr/local/bin/etcd"];

async function run(cmd: string, args: string[]): Promise<Deno.CommandOutput | null> {
  try {
    return await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
  } catch {
    return null; // Not installed.
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

async function which(name: string): Promise<string | null> {
  const out = await run("sh", ["-c", `command -v ${name}`]);
  const path = out?.success ? new TextDecoder().decode(out.stdout).trim() : "";
  return path || null;
}

/**
 * Stops the etcd service that Debian's postinst may have started (on :2379, with its data in
 * /var/lib/etcd). The bench's own members use other ports, so this only frees CPU and disk.
 */
async function stopPackagedService(): Promise<void> {
  if (await which("systemctl")) await run("systemctl", ["stop", "etcd"]);
  if (await which("service")) await run("service", ["etcd", "stop"]);
  else await run("/etc/init.d/etcd", ["stop"]);
}

/**
 * Returns the path of the `etcd` binary, installing `etcd-server` and `etcd-client` with apt-get
 * when it is missing and this process runs as root.
 *
 * @example
 * ```ts ignore
 * import { ensureEtcd } from "./_etcd.ts";
 * console.log(await ensureEtcd()); // "/usr/bin/etcd"
 * ```
 */
export async function ensureEtcd(): Promise<string> {
  const found = await which("etcd") ?? ETCD_PATHS.find(isFile);
  if (found) return found;
  if (Deno.uid() !== 0) {
    throw new Error(
      "etcd is not installed and this is not root: run 'sudo apt-get install -y etcd-server " +
        "etcd-client', or put an etcd binary on PATH",
    );
  }
  console.error("bench:consensus: installing etcd-server with apt-get ...");
  const install = await new Deno.Command("apt-get", {
    args: ["install", "-y", "--no-install-recommends", "etcd-server", "etcd-client"],
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!install.success) {
    throw new Error(
      `'apt-get install etcd-server' failed (try 'apt-get update' first): ${
        new TextDecoder().decode(install.stderr).trim().split("\n").slice(-3).join(" | ")
      }`,
    );
  }
  await stopPackagedService();
  const path = await which("etcd") ?? ETCD_PATHS.find(isFile);
  if (!path) throw new Error("etcd-server was installed but no 'etcd' binary was found");
  return path;
}

/** Ports of the three members. */
export interface EtcdPorts {
  /** Client (API) ports, one per member. */
  client: number[];
  /** Peer (Raft) ports, one per member. */
  peer: number[];
}

/** Options of {@linkcode startEtcdCluster}. */
export interface EtcdClusterOptions {
  /** Parent of the cluster's temp dir. @default "/tmp" */
  dir?: string;
  /** Ports; free ones are picked when omitted. */
  ports?: EtcdPorts;
  /** The etcd binary. @default the result of {@linkcode ensureEtcd} */
  etcd?: string;
  /** How long to wait for a leader and a first write, ms. @default 30000 */
  readyTimeoutMs?: number;
}

/** One member of a running cluster. */
export interface EtcdMember {
  /** Its name, `m0`..`m2`. */
  name: string;
  /** Its client URL. */
  endpoint: string;
  /** Its process id. */
  pid: number;
  /** Its process. */
  process: Deno.ChildProcess;
  /** Whether it was killed. */
  killed: boolean;
}

/** A running three-member etcd cluster; {@linkcode EtcdCluster.stop} removes every trace. */
export interface EtcdCluster {
  /** The members. */
  members: EtcdMember[];
  /** Client URLs of the members. */
  endpoints: string[];
  /** The member that is leader now, asked of the members still up. */
  leader(): Promise<EtcdMember>;
  /** `kill -9` of one member. */
  kill(member: EtcdMember): void;
  /** Kills every member and removes the data dirs. */
  stop(): Promise<void>;
  /** Same as {@linkcode EtcdCluster.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

const encoder = new TextEncoder();
const b64 = (s: string | Uint8Array) => {
  const bytes = typeof s === "string" ? encoder.encode(s) : s;
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
};

/** Base64 as etcd's JSON gateway wants keys and values. */
export const base64 = b64;

/** POSTs `body` to `path` of the gateway at `endpoint`; throws on a non-2xx answer or timeout. */
export async function etcdCall(
  endpoint: string,
  path: string,
  body: unknown,
  timeoutMs = 2000,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${endpoint}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`etcd ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

interface Status {
  header?: { member_id?: string };
  leader?: string;
}

/**
 * Starts three etcd members on 127.0.0.1, each with its own data dir in a fresh temp dir, and
 * waits until they have a leader that acknowledges a write. Everything is cleaned up if that fails.
 *
 * @example
 * ```ts ignore
 * import { startEtcdCluster } from "./_etcd.ts";
 * await using cluster = await startEtcdCluster();
 * console.log((await cluster.leader()).endpoint);
 * ```
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const etcd = options.etcd ?? await ensureEtcd();
  const ports = options.ports ?? (() => {
    const p = freePorts(6);
    return { client: p.slice(0, 3), peer: p.slice(3) };
  })();
  const root = await Deno.makeTempDir({ dir: options.dir ?? "/tmp", prefix: "cell-bench-etcd-" });
  const names = ["m0", "m1", "m2"];
  const peerUrl = (i: number) => `http://127.0.0.1:${ports.peer[i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(",");
  const debug = Boolean(Deno.env.get("BENCH_DEBUG"));
  const members: EtcdMember[] = [];
  // One token for the three: member and cluster ids derive from it.
  const token = `cell-bench-${Deno.pid}-${Date.now()}`;

  let unregister = () => {};
  const stop = async () => {
    for (const m of members) {
      if (!m.killed) {
        m.killed = true;
        try {
          m.process.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }
    await Promise.all(members.map((m) => m.process.status));
    await Deno.remove(root, { recursive: true }).catch(() => {});
    unregister();
  };
  unregister = cleanupOnSignal(stop);

  const cluster: EtcdCluster = {
    members,
    endpoints: [],
    async leader() {
      for (const m of members.filter((m) => !m.killed)) {
        try {
          const s = await etcdCall(m.endpoint, "/v3/maintenance/status", {}, 1000) as Status;
          if (!s.leader || s.leader === "0") continue;
          for (const other of members.filter((o) => !o.killed)) {
            const o = await etcdCall(other.endpoint, "/v3/maintenance/status", {}, 1000) as Status;
            if (o.header?.member_id === s.leader) return other;
          }
        } catch { /* try the next member */ }
      }
      throw new Error("No etcd member reports a live leader");
    },
    kill(member) {
      member.killed = true;
      member.process.kill("SIGKILL");
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };

  try {
    for (const [i, name] of names.entries()) {
      const clientUrl = `http://127.0.0.1:${ports.client[i]}`;
      const process = new Deno.Command(etcd, {
        args: [
          `--name=${name}`,
          `--data-dir=${root}/${name}`,
          `--listen-client-urls=${clientUrl}`,
          `--advertise-client-urls=${clientUrl}`,
          `--listen-peer-urls=${peerUrl(i)}`,
          `--initial-advertise-peer-urls=${peerUrl(i)}`,
          `--initial-cluster=${initialCluster}`,
          `--initial-cluster-token=${token}`,
          "--initial-cluster-state=new",
          // etcd's defaults, spelled out: what the comparison is against.
          "--heartbeat-interval=100",
          "--election-timeout=1000",
          "--logger=zap",
          "--log-level=warn",
        ],
        stdin: "null",
        stdout: debug ? "inherit" : "null",
        stderr: debug ? "inherit" : "null",
      }).spawn();
      const member = { name, endpoint: clientUrl, pid: process.pid, process, killed: false };
      // A member that exits on its own counts as killed: leader() skips it, startup fails fast.
      process.status.then(() => member.killed = true);
      members.push(member);
    }
    cluster.endpoints = members.map((m) => m.endpoint);
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    for (;;) {
      try {
        const leader = await cluster.leader();
        await etcdCall(leader.endpoint, "/v3/kv/put", { key: b64("ready"), value: b64("1") });
        break;
      } catch (e) {
        const dead = members.find((m) => m.killed);
        if (dead || Date.now() > deadline) {
          throw new Error(
            `The etcd cluster did not get ready (set BENCH_DEBUG=1 for its logs): ${e}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return cluster;
  } catch (e) {
    await stop();
    throw e;
  }
}
