// The consensus cell as three real processes (`deno run -A cells/consensus/main.ts`), each with
// its own write-ahead log, killed with SIGKILL while clients write: no acknowledged write is lost.
import { CellError } from "@cell/sdk";
import { connectConsensus, type ConsensusClient } from "@cell/consensus";
import { run } from "@cell/cli";
import { assert, assertEquals, waitFor } from "./_helpers.ts";
import { quietNucleus } from "./_instances.ts";

const MAIN = new URL("../cells/consensus/main.ts", import.meta.url).pathname;
const IDS = ["n1", "n2", "n3"];

/** One member process; stderr is kept to explain a failure. */
interface MemberProcess {
  process: Deno.ChildProcess;
  log: string[];
}

/** Three member processes under a temporary Cell home, restartable, removed on dispose. */
class ProcessCluster implements AsyncDisposable {
  readonly home: string;
  readonly members = new Map<string, MemberProcess>();

  constructor(home: string) {
    this.home = home;
  }

  static async start(): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(
      await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-raft-" }),
    );
    try {
      await Promise.all(IDS.map((id) => cluster.startMember(id)));
    } catch (e) {
      await cluster[Symbol.asyncDispose]();
      throw e;
    }
    return cluster;
  }

  /** Starts member `id` on its data directory; resolves once it serves. */
  async startMember(id: string): Promise<void> {
    const process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--id",
        id,
        "--members",
        IDS.join(","),
        "--data",
        `${this.home}/data/${id}`,
      ],
      env: { CELL_HOME: this.home, CELL_NUCLEUS: "0", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const member: MemberProcess = { process, log: [] };
    this.members.set(id, member);
    (async () => {
      for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) {
        member.log.push(chunk);
      }
    })().catch(() => {});
    const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const timer = setTimeout(() => process.kill("SIGKILL"), 30_000);
    try {
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) {
          throw new Error(`member ${id} exited before it was ready:\n${member.log.join("")}`);
        }
        text += value;
      }
    } finally {
      clearTimeout(timer);
    }
    assert(text.startsWith(`consensus member ${id} serving`), text);
    (async () => {
      while (!(await reader.read()).done);
    })().catch(() => {});
  }

  /** Kills member `id` with SIGKILL and waits for it to be gone. */
  async kill(id: string): Promise<void> {
    const member = this.members.get(id);
    if (!member) return;
    this.members.delete(id);
    try {
      member.process.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await member.process.status;
  }

  /** A client that knows the three members. */
  client(timeoutMs = 15_000): Promise<ConsensusClient> {
    return connectConsensus({ members: IDS, home: this.home, timeoutMs });
  }

  async leader(client: ConsensusClient): Promise<string> {
    let leader: string | null = null;
    await waitFor(async () => {
      const reports = await client.statuses({ timeoutMs: 1000 });
      leader = reports.find((r) => r.status?.role === "leader")?.id ?? null;
      return leader !== null;
    }, 15_000);
    return leader!;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const id of [...this.members.keys()]) await this.kill(id);
    await Deno.remove(this.home, { recursive: true }).catch(() => {});
  }
}

/** Writers that put unique keys until stopped, recording what was acknowledged. */
function writers(client: ConsensusClient, count: number, prefix: string) {
  const acked = new Map<string, string>();
  const failures: string[] = [];
  let stop = false;
  const loops = Array.from({ length: count }, async (_, w) => {
    for (let seq = 0; !stop; seq++) {
      const key = `${prefix}-${w}-${seq}`;
      const value = `v${seq}`;
      try {
        await client.write({ key, value });
        acked.set(key, value);
      } catch (e) {
        failures.push(String(e));
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  return {
    acked,
    failures,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

/** Reads every acknowledged key linearizably and checks its value. */
async function assertAllPresent(client: ConsensusClient, acked: Map<string, string>) {
  const missing: string[] = [];
  const keys = [...acked.keys()];
  for (let i = 0; i < keys.length; i += 32) {
    await Promise.all(
      keys.slice(i, i + 32).map(async (key) => {
        const { value } = await client.read({ key });
        if (value !== acked.get(key)) missing.push(`${key}=${value} (acked ${acked.get(key)})`);
      }),
    );
  }
  assertEquals(missing, []);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("writes continue after the leader is killed with SIGKILL and a new one is elected", async () => {
  await using cluster = await ProcessCluster.start();
  await using client = await cluster.client();
  const first = await cluster.leader(client);
  const load = writers(client, 8, "leader");
  await sleep(800);
  const before = load.acked.size;
  await cluster.kill(first);
  await sleep(2000);
  const afterKill = load.acked.size;
  await sleep(800);
  await load.stop();
  assert(before > 0, "no write was acknowledged before the kill");
  assert(load.acked.size > afterKill, `writes stalled after the kill: ${load.failures.slice(-3)}`);
  // The client waits out the election: no write gives up.
  assertEquals(load.failures, []);
  const second = await cluster.leader(client);
  assert(second !== first, `the killed ${first} is still reported as leader`);
  await assertAllPresent(client, load.acked);
});

Deno.test("killing random members one at a time, then restarting them, loses no acknowledged write", async () => {
  await using cluster = await ProcessCluster.start();
  await using client = await cluster.client();
  await cluster.leader(client);
  const load = writers(client, 6, "random");
  for (let round = 0; round < 3; round++) {
    await sleep(500);
    const victim = IDS[Math.floor(Math.random() * IDS.length)]!;
    await cluster.kill(victim);
    await sleep(700);
    await cluster.startMember(victim);
  }
  await sleep(500);
  await load.stop();
  assert(load.acked.size > 0, `nothing acknowledged: ${load.failures.slice(-3)}`);
  await assertAllPresent(client, load.acked);
});

Deno.test("every acknowledged write survives SIGKILL of all three members mid-write", async () => {
  await using cluster = await ProcessCluster.start();
  const acked = new Map<string, string>();
  {
    await using client = await cluster.client(3000);
    await cluster.leader(client);
    const load = writers(client, 16, "crash");
    await sleep(1500);
    // All at once, while writes are in flight: no member gets to stop cleanly.
    await Promise.all(IDS.map((id) => cluster.kill(id)));
    await load.stop();
    for (const [k, v] of load.acked) acked.set(k, v);
  }
  assert(acked.size > 0, "no write was acknowledged before the crash");
  await Promise.all(IDS.map((id) => cluster.startMember(id)));
  await using client = await cluster.client();
  await cluster.leader(client);
  await assertAllPresent(client, acked);
});

Deno.test("cell consensus put, get, members and status work against a 3-process cluster", async () => {
  await using cluster = await ProcessCluster.start();
  {
    await using client = await cluster.client();
    await cluster.leader(client);
  }
  const cell = async (...args: string[]) => {
    let stdout = "";
    let stderr = "";
    const code = await run(["--home", cluster.home, "consensus", ...args], {
      stdout: (t) => stdout += t,
      stderr: (t) => stderr += t,
    });
    return { code, stdout, stderr };
  };
  const put = await cell("put", "greeting", "hello");
  assertEquals(put.code, 0, put.stderr);
  assert(/^ok: 'greeting' set at index \d+\n$/.test(put.stdout), put.stdout);
  const get = await cell("get", "greeting");
  assertEquals([get.code, get.stdout], [0, "hello\n"]);
  const json = JSON.parse((await cell("get", "greeting", "--stale", "--json")).stdout);
  assertEquals(json.key, "greeting");
  const absent = await cell("get", "nothing-here");
  assertEquals(absent.code, 1);
  assert(absent.stderr.includes("'nothing-here' is absent"), absent.stderr);
  const status = await cell("status", "--json");
  assertEquals(status.code, 0, status.stdout);
  const report = JSON.parse(status.stdout);
  assert(IDS.includes(report.leader), status.stdout);
  assertEquals(report.members.map((m: { id: string }) => m.id), IDS);
  const members = await cell("members");
  assertEquals(members.code, 0);
  assertEquals(members.stdout.split("\n").filter(Boolean).length, 3);

  // With one member down, status lists it as down and still exits 0 (a majority answers).
  const leader = report.leader as string;
  const down = IDS.find((id) => id !== leader)!;
  await cluster.kill(down);
  const degraded = await cell("status");
  assertEquals(degraded.code, 0, degraded.stdout + degraded.stderr);
  assert(new RegExp(`${down}\\s+down`).test(degraded.stdout), degraded.stdout);
});

Deno.test("a client says clearly when no leader can be elected", async () => {
  await using cluster = await ProcessCluster.start();
  await cluster.kill("n2");
  await cluster.kill("n3");
  await using client = await cluster.client(1500);
  const error = await client.write({ key: "k", value: "v" }).then(() => undefined, (e) => e);
  assert(error instanceof CellError, String(error));
  assertEquals(error.code, "UNAVAILABLE");
  assert(/No leader answered write of "k" within 1500 ms/.test(error.message), error.message);
});

Deno.test("cell deploy consensus --instances 3 starts members that find each other through the nucleus", async () => {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-raft-" });
  const quiet = { stdout: () => {}, stderr: () => {} };
  try {
    await using _nucleus = await quietNucleus(home);
    const deployed = await run(
      ["--home", home, "deploy", "consensus", MAIN, "--instances", "3"],
      quiet,
    );
    assertEquals(deployed, 0);
    try {
      // No member list: the client finds the members through the nucleus too.
      let kv: ConsensusClient | undefined;
      await waitFor(async () => {
        kv ??= await connectConsensus({ home, timeoutMs: 3000 }).catch(() => undefined);
        if (kv && kv.known.length < 3) {
          await kv.close();
          kv = undefined;
        }
        return kv !== undefined;
      }, 30_000);
      await using client = kv!;
      assertEquals([...client.known].sort(), ["consensus-0", "consensus-1", "consensus-2"]);
      await client.write({ key: "deployed", value: "yes" }, { timeoutMs: 15_000 });
      assertEquals((await client.read({ key: "deployed" })).value, "yes");
      const status = await client.status();
      assertEquals(status.members, ["consensus-0", "consensus-1", "consensus-2"]);
    } finally {
      assertEquals(await run(["--home", home, "stop", "consensus"], quiet), 0);
    }
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});
