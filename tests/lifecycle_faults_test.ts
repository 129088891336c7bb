// The nucleus under faults, timed against its heartbeat interval: an instance killed with
// SIGKILL is replaced, and a nucleus killed with SIGKILL finds every instance again, each within
// two heartbeat intervals, in the bubblewrap sandbox (when it works here) and without it.
import { connect, type Infer } from "@cell/sdk";
import { type Instance, Nucleus } from "@cell/sdk/nucleus_api";
import { tempCellHome } from "@cell/sdk/testing";
import { sandboxProblem } from "../cells/nucleus/sandbox.ts";
import { assert, assertEquals, type Child, spawnReady } from "./_helpers.ts";

const MAIN = "../cells/nucleus/main.ts";
const MY_SERVICE = new URL("../examples/my_service/main.ts", import.meta.url).pathname;
/** The nucleus's default heartbeat interval, which the bounds are stated in. */
const INTERVAL_MS = 1000;
const noSandbox = await sandboxProblem();
const modes = noSandbox ? [false] : [true, false];
if (noSandbox) console.log(`lifecycle_faults_test: sandboxed runs skipped: ${noSandbox}`);

type Found = Infer<typeof Instance>;

async function healthy(home: string): Promise<Found[]> {
  await using client = await connect<typeof Nucleus>("nucleus", {
    service: Nucleus,
    home,
    timeoutMs: 2000,
  });
  return (await client.discover({ cell: "my-service" })).instances;
}

/** Polls every 20 ms until `check` returns a value; the time it took, in ms. */
async function timeUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  limitMs = 30_000,
): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return { ms: performance.now() - started, value };
    if (performance.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function kill(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

async function deploy(home: string, sandbox: boolean): Promise<Found[]> {
  {
    await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus, home });
    const deployment = await client.deploy({
      cell: "my-service",
      module: MY_SERVICE,
      instances: 3,
      sandbox,
    });
    assertEquals(deployment.sandbox, sandbox ? "bwrap" : "none");
  }
  return (await timeUntil("3 healthy instances", async () => {
    const found = await healthy(home);
    return found.length === 3 ? found : undefined;
  })).value;
}

/** Stops the deployment and makes sure no instance outlives the test. */
async function cleanUp(home: string, pids: number[]): Promise<void> {
  try {
    await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus, home });
    await client.stop({ cell: "my-service" });
  } catch {
    // No nucleus any more: the kills below are all that is left to do.
  }
  for (const pid of pids) kill(pid);
}

for (const sandbox of modes) {
  const how = sandbox ? "in the sandbox" : "without the sandbox";

  Deno.test(`an instance killed with SIGKILL is replaced, registered and healthy, within 2 heartbeat intervals ${how}`, async () => {
    await using home = await tempCellHome();
    await using _nucleus = await spawnReady(MAIN, [], { CELL_HOME: home.path });
    const pids: number[] = [];
    try {
      const before = await deploy(home.path, sandbox);
      pids.push(...before.map((i) => i.pid));
      // Past the supervisor's "crashed at start" window, so the restart is not a crash loop.
      await new Promise((r) => setTimeout(r, 2500));
      const victim = before[1]!;
      kill(victim.pid);
      const { ms, value: after } = await timeUntil("a replacement", async () => {
        const found = await healthy(home.path);
        const replaced = found.length === 3 && found.every((i) => i.pid !== victim.pid);
        return replaced ? found : undefined;
      });
      pids.push(...after.map((i) => i.pid));
      console.log(`replacement healthy ${ms.toFixed(0)} ms after kill -9 (${how})`);
      assert(ms <= 2 * INTERVAL_MS, `replacement took ${ms.toFixed(0)} ms`);
      assertEquals(new Set(after.map((i) => i.instance_id)).size, 3);
      // The survivors are the same processes: only the victim was replaced.
      for (const i of before) if (i !== victim) assert(after.some((a) => a.pid === i.pid));
    } finally {
      await cleanUp(home.path, pids);
    }
  });

  Deno.test(`a nucleus killed with SIGKILL and started again has all 3 instances registered within 2 heartbeat intervals, none duplicated, ${how}`, async () => {
    await using home = await tempCellHome();
    const env = { CELL_HOME: home.path };
    const pids: number[] = [];
    let second: Child | undefined;
    try {
      {
        await using first = await spawnReady(MAIN, [], env);
        pids.push(...(await deploy(home.path, sandbox)).map((i) => i.pid));
        first.process.kill("SIGKILL");
        await first.process.status;
      }
      second = await spawnReady(MAIN, [], env);
      const { ms, value: again } = await timeUntil("3 instances registered again", async () => {
        const found = await healthy(home.path);
        return found.length >= 3 ? found : undefined;
      });
      console.log(`all 3 registered ${ms.toFixed(0)} ms after the new nucleus was ready (${how})`);
      assert(ms <= 2 * INTERVAL_MS, `re-registration took ${ms.toFixed(0)} ms`);
      // Adopted, not started twice: the same processes, each once.
      assertEquals(again.map((i) => i.pid).sort(), [...pids].sort());
      assertEquals(new Set(again.map((i) => i.instance_id)).size, 3);
      // And it stays that way: no duplicate shows up a heartbeat later.
      await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
      const later = await healthy(home.path);
      assertEquals(later.map((i) => i.pid).sort(), [...pids].sort());
    } finally {
      await cleanUp(home.path, pids);
      await second?.[Symbol.asyncDispose]();
    }
  });
}
