/**
 * `deno task bench:nucleus`: the nucleus under load, through its real Unix socket. Prints one
 * JSON line:
 *
 * - `register_ops_s`: registrations per second, 1,000 instances, 64 in flight on 4 connections;
 * - `discover_ops_s`: `discover` calls per second answering all 1,000 instances;
 * - `instances`: how many `discover` found;
 * - `deploy_3_ready_ms`: from `deploy` of `examples/my_service/main.ts` with 3 instances
 *   (without sandbox) until `discover` shows 3 healthy (`deploy_3_ready_sandboxed_ms` with
 *   bubblewrap, when `bwrap` is installed);
 * - `replace_after_kill_ms`: from `kill -9` of one of them until a new healthy instance
 *   replaces it.
 *
 * Lifecycle numbers are `null` when that part failed; `errors` then says why.
 *
 * @module
 */
import { type Client, connect } from "@cell/sdk";
import { Nucleus } from "@cell/sdk/nucleus_api";

const INSTANCES = 1000;
const IN_FLIGHT = 64;
const CONNECTIONS = 4;
const DISCOVER_CALLS = 200;
const LIFECYCLE_TIMEOUT_MS = 60_000;

type NucleusClient = Client<typeof Nucleus>;

async function startNucleus(home: string): Promise<Deno.ChildProcess> {
  const main = new URL("../cells/nucleus/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    // Long leases: the bench measures the registry, not expiry.
    args: ["run", "-A", main, "--heartbeat-ms", "60000"],
    env: { CELL_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: Deno.env.get("BENCH_DEBUG") ? "inherit" : "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the nucleus exited before it was ready: ${text}`);
    text += value;
  }
  (async () => {
    while (!(await reader.read()).done);
  })().catch(() => {});
  return child;
}

/** Runs `task(i)` for i in [0, n) with `limit` in flight; returns elapsed ms. */
async function pool(n: number, limit: number, task: (i: number) => Promise<unknown>) {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < n) await task(next++);
  }));
  return performance.now() - started;
}

async function registerMany(clients: NucleusClient[]) {
  const leases: string[] = [];
  const ms = await pool(INSTANCES, IN_FLIGHT, async (i) => {
    const lease = await clients[i % clients.length]!.register({
      cell: "bench-cell",
      node_id: "",
      endpoints: [{ transport: "uds", address: `/tmp/bench-cell-${i}.sock` }],
      pid: Deno.pid,
      metadata: { version: "1.0.0", zone: "a" },
    });
    leases.push(lease.lease_id);
  });
  // Healthy, so that discover lists them (not timed).
  await pool(leases.length, IN_FLIGHT, (i) =>
    clients[i % clients.length]!.heartbeat({
      lease_id: leases[i]!,
    }));
  return { ms, leases };
}

async function until(
  client: NucleusClient,
  cell: string,
  done: (healthy: { instance_id: string; registered_at_ms: number }[]) => boolean,
): Promise<void> {
  const end = Date.now() + LIFECYCLE_TIMEOUT_MS;
  let since = 0;
  while (Date.now() < end) {
    const answer = await client.watch({ cell, since, wait_ms: 1000 }, { timeoutMs: 5000 });
    if (done(answer.instances)) return;
    since = answer.version;
  }
  throw new Error(`'${cell}' did not get there in ${LIFECYCLE_TIMEOUT_MS} ms`);
}

async function lifecycle(client: NucleusClient, cell: string, sandbox: boolean) {
  const module = new URL("../examples/my_service/main.ts", import.meta.url).pathname;
  const started = performance.now();
  await client.deploy({ cell, module, instances: 3, sandbox }, { timeoutMs: 30_000 });
  await until(client, cell, (healthy) => healthy.length >= 3);
  const readyMs = performance.now() - started;
  // Kill by the supervisor's (host) pid: inside a sandbox's pid namespace the pid an instance
  // registers with means nothing out here.
  const { instances } = await client.discover({ cell });
  const victim = instances[0]!.instance_id;
  const { deployments } = await client.deployments({});
  const hostPid = deployments.find((d) => d.cell === cell)?.status
    .find((s) => s.instance_id === victim)?.pid;
  if (!hostPid) throw new Error(`the supervisor lists no process for ${victim}`);
  const killedAtMs = Date.now();
  const killedAt = performance.now();
  Deno.kill(hostPid, "SIGKILL");
  await until(
    client,
    cell,
    (healthy) =>
      healthy.length >= 3 &&
      healthy.every((i) => i.instance_id !== victim || i.registered_at_ms >= killedAtMs),
  );
  const replaceMs = performance.now() - killedAt;
  await client.stop({ cell }, { timeoutMs: 30_000 });
  await until(client, cell, (healthy) => healthy.length === 0);
  return { readyMs, replaceMs };
}

async function hasBwrap(): Promise<boolean> {
  try {
    return (await new Deno.Command("bwrap", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

const round = (n: number | null) => n === null ? null : Math.round(n * 10) / 10;

if (import.meta.main) {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-bench-" });
  const nucleus = await startNucleus(home);
  const errors: Record<string, string> = {};
  const result: Record<string, number | null> = {};
  const clients: NucleusClient[] = [];
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      clients.push(await connect<typeof Nucleus>("nucleus", { service: Nucleus, home }));
    }
    const { ms: registerMs } = await registerMany(clients);
    result.register_ops_s = Math.round(INSTANCES / (registerMs / 1000));
    let found = 0;
    const discoverMs = await pool(DISCOVER_CALLS, 8, async (i) => {
      found = (await clients[i % clients.length]!.discover({ cell: "bench-cell" })).instances
        .length;
    });
    result.discover_ops_s = Math.round(DISCOVER_CALLS / (discoverMs / 1000));
    result.instances = found;
    for (const [key, sandbox] of [["", false], ["_sandboxed", true]] as const) {
      if (sandbox && !(await hasBwrap())) continue;
      try {
        const { readyMs, replaceMs } = await lifecycle(clients[0]!, "my-service", sandbox);
        result[`deploy_3_ready${key}_ms`] = round(readyMs);
        result[`replace_after_kill${key}_ms`] = round(replaceMs);
      } catch (e) {
        const { lines } = await clients[0]!.logs({ cell: "my-service", tail: 5 }).catch(() => ({
          lines: [],
        }));
        await clients[0]!.stop({ cell: "my-service" }).catch(() => {});
        const tail = lines.map((l) => l.line).join(" | ");
        const message = e instanceof Error ? e.message : String(e);
        result[`deploy_3_ready${key}_ms`] ??= null;
        result[`replace_after_kill${key}_ms`] = null;
        errors[`lifecycle${key}`] = tail ? `${message}; last output: ${tail}` : message;
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.$close()));
    nucleus.kill("SIGTERM");
    const timer = setTimeout(() => nucleus.kill("SIGKILL"), 10_000);
    await nucleus.status;
    clearTimeout(timer);
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
  console.log(JSON.stringify({
    register_ops_s: result.register_ops_s,
    discover_ops_s: result.discover_ops_s,
    instances: result.instances,
    deploy_3_ready_ms: result.deploy_3_ready_ms ?? null,
    replace_after_kill_ms: result.replace_after_kill_ms ?? null,
    ...Object.fromEntries(Object.entries(result).filter(([k]) => k.includes("_sandboxed"))),
    ...(Object.keys(errors).length === 0 ? {} : { errors }),
  }));
}
