import assert from "node:assert/strict";
import { join } from "node:path";
import { CellError } from "@cell/sdk";
import { writeDurably } from "./state.ts";
import {
  CRASH,
  fixture,
  killAll,
  liveInstances,
  PROBE,
  SANDBOX,
  TIMING,
  waitFor,
} from "./testdata/helpers.ts";
import type { Supervisor } from "./supervisor.ts";

const status = (s: Supervisor, cell: string) =>
  s.deployments().find((d) => d.cell === cell)!.status;
const allRunning = (s: Supervisor, cell: string) =>
  status(s, cell).every((i) => i.state === "running");
const logText = async (s: Supervisor, cell: string) =>
  (await s.logs({ cell, tail: 1000 })).map((l) => `${l.instance_id} ${l.line}`).join("\n");
const rejects = async (promise: Promise<unknown>, code: string, pattern: RegExp) => {
  await assert.rejects(promise, (e) => {
    assert(e instanceof CellError, `expected a CellError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
};

Deno.test("deploy starts N instances with only the cell's environment", async () => {
  await using f = await fixture();
  const deployment = await f.supervisor.deploy({
    cell: "probe",
    module: PROBE,
    instances: 3,
    sandbox: SANDBOX,
  });
  assert.deepEqual(deployment.status.map((s) => s.instance_id), ["probe-0", "probe-1", "probe-2"]);
  assert.equal(deployment.sandbox, SANDBOX ? "bwrap" : "none");
  assert(deployment.permissions.includes("--no-prompt"));
  await waitFor("3 running instances", () => allRunning(f.supervisor, "probe"));
  const live = liveInstances(f.home);
  assert.deepEqual(live.map((i) => i.instanceId), ["probe-0", "probe-1", "probe-2"]);
  assert.deepEqual(live.map((i) => i.pid), status(f.supervisor, "probe").map((s) => s.pid));
  const expected = ["CELL_DATA_DIR", "CELL_HOME", "CELL_INSTANCE_ID", "CELL_NODE_ID", "HOME"]
    .concat(["NO_COLOR", "PATH", "TMPDIR"])
    .concat(
      ["DENO_DIR", "XDG_CACHE_HOME", "CELL_SHM", "CELL_NUCLEUS"].filter((n) => Deno.env.get(n)),
    );
  for (const instance of live) {
    // Bubblewrap sets PWD after changing to the working directory, the instance's data dir.
    const { PWD, ...env } = instance.env;
    assert(PWD === undefined || PWD === instance.env.CELL_DATA_DIR, PWD);
    assert.deepEqual(Object.keys(env).sort(), expected.sort());
    assert.equal(instance.env.CELL_HOME, f.home);
    assert.equal(instance.env.CELL_NODE_ID, "n7");
    assert.equal(instance.env.CELL_DATA_DIR, join(f.home, "data", "probe", instance.instanceId));
  }
  const state = JSON.parse(await Deno.readTextFile(join(f.home, "nucleus", "state.json")));
  assert.equal(state.deployments[0].instances, 3);
  assert.deepEqual(state.instances.map((i: { pid: number }) => i.pid), live.map((i) => i.pid));
  assert.equal(f.supervisor.desired("probe"), 3);
  assert.equal(f.supervisor.desired("other"), 0);
});

Deno.test("an instance killed with SIGKILL is restarted with backoff and its exit recorded", async () => {
  await using f = await fixture();
  await f.supervisor.deploy({ cell: "probe", module: PROBE, instances: 2, sandbox: SANDBOX });
  await waitFor("2 running instances", () => allRunning(f.supervisor, "probe"));
  const victim = status(f.supervisor, "probe")[1]!;
  Deno.kill(victim.pid, "SIGKILL");
  await waitFor("the restart", () => {
    const now = status(f.supervisor, "probe")[1]!;
    return now.restarts === 1 && now.state === "running" && now.pid !== victim.pid;
  });
  const restarted = status(f.supervisor, "probe")[1]!;
  assert.equal(restarted.last_exit_code, 137);
  assert.match(restarted.last_error!, /^killed by SIGKILL.* after \d+ s: see `cell logs probe`$/);
  assert.equal(status(f.supervisor, "probe")[0]!.restarts, 0);
  assert.deepEqual(liveInstances(f.home).map((i) => i.instanceId), ["probe-0", "probe-1"]);
  assert(f.messages.some((m) => m.includes("probe-1") && m.includes("restarting in")));
});

Deno.test("a module that crashes at start backs off with a clear status, and the supervisor carries on", async () => {
  // A wide start window, so that a slow start on a loaded machine still counts as a crash at start.
  await using f = await fixture({ timing: { ...TIMING, startWindowMs: 10_000 } });
  await f.supervisor.deploy({ cell: "crash", module: CRASH, instances: 1, sandbox: SANDBOX });
  await waitFor("two restarts", () => status(f.supervisor, "crash")[0]!.restarts >= 2);
  const crash = status(f.supervisor, "crash")[0]!;
  assert.equal(crash.last_exit_code, 3);
  assert.match(
    crash.last_error!,
    /^exited with code 3 within 10 s of starting, \d+ times: see `cell logs crash`$/,
  );
  assert(["backoff", "starting"].includes(crash.state));
  // Delays double: 200, 400, 800 ms ...
  assert(f.messages.some((m) => m.endsWith("restarting in 400 ms")));
  assert.match(await logText(f.supervisor, "crash"), /crash-0 crash: failing on purpose/);
  const stderr = (await f.supervisor.logs({ cell: "crash" })).filter((l) => l.stream === "stderr");
  assert(stderr.length >= 2);
  await f.supervisor.deploy({ cell: "probe", module: PROBE, instances: 1, sandbox: SANDBOX });
  await waitFor("the probe to start", () => status(f.supervisor, "probe")[0]!.pid > 0);
  await f.supervisor.stop("crash");
  assert.deepEqual(f.supervisor.deployments().map((d) => d.cell), ["probe"]);
});

Deno.test("deploy refuses a missing module, a bad name, a bad count and a misnamed manifest, persisting nothing", async () => {
  await using f = await fixture();
  const missing = join(f.home, "nope.ts");
  await rejects(
    f.supervisor.deploy({ cell: "ghost", module: missing, instances: 1 }),
    "NOT_FOUND",
    /Module '.*nope\.ts' does not exist: pass the path/,
  );
  await rejects(
    f.supervisor.deploy({ cell: "Bad Name", module: PROBE, instances: 1, sandbox: SANDBOX }),
    "INVALID_ARGUMENT",
    /Cell name "Bad Name" is invalid/,
  );
  await rejects(
    f.supervisor.deploy({ cell: "probe", module: PROBE, instances: 0, sandbox: SANDBOX }),
    "INVALID_ARGUMENT",
    /Instances must be a whole number from 1 to 32, not 0/,
  );
  await rejects(
    f.supervisor.deploy({ cell: "other", module: PROBE, instances: 1, sandbox: SANDBOX }),
    "INVALID_ARGUMENT",
    /names the cell 'probe', not 'other'/,
  );
  await rejects(f.supervisor.scale("ghost", 2), "NOT_FOUND", /not deployed: deploy it with/);
  await rejects(f.supervisor.logs({ cell: "ghost" }), "NOT_FOUND", /No logs of cell 'ghost'/);
  assert.deepEqual(f.supervisor.deployments(), []);
  const state = await Deno.readTextFile(join(f.home, "nucleus", "state.json")).catch(() => "");
  assert(!state.includes("ghost") && !state.includes("other"));
  assert.equal(liveInstances(f.home).length, 0);
});

Deno.test("scale adds instances and stops the surplus gracefully", async () => {
  await using f = await fixture();
  await f.supervisor.deploy({ cell: "probe", module: PROBE, instances: 1, sandbox: false });
  const up = await f.supervisor.scale("probe", 3);
  assert.equal(up.instances, 3);
  await waitFor("3 running instances", () => allRunning(f.supervisor, "probe"));
  assert.equal(liveInstances(f.home).length, 3);
  const down = await f.supervisor.scale("probe", 1);
  assert.deepEqual(down.status.map((s) => s.instance_id), ["probe-0"]);
  assert.deepEqual(liveInstances(f.home).map((i) => i.instanceId), ["probe-0"]);
  const text = await logText(f.supervisor, "probe");
  // SIGTERM reached them: they said goodbye rather than being killed.
  assert.match(text, /probe-1 probe probe-1 stopping/);
  assert.match(text, /probe-2 probe probe-2 stopping/);
  assert.equal(f.supervisor.desired("probe"), 1);
  // Deploying the same module again is a scale.
  const again = await f.supervisor.deploy({
    cell: "probe",
    module: PROBE,
    instances: 2,
    sandbox: false,
  });
  assert.equal(again.instances, 2);
  await rejects(
    f.supervisor.deploy({
      cell: "probe",
      module: PROBE,
      instances: 2,
      sandbox: false,
      args: ["x"],
    }),
    "ALREADY_EXISTS",
    /already deployed/,
  );
});

Deno.test("stop ends every instance, forgets the deployment and keeps the logs", async () => {
  await using f = await fixture();
  await f.supervisor.deploy({ cell: "probe", module: PROBE, instances: 2, sandbox: SANDBOX });
  await waitFor("2 running instances", () => allRunning(f.supervisor, "probe"));
  const stopped = await f.supervisor.stop("probe");
  assert(stopped.status.every((s) => s.state === "stopped"));
  assert.equal(liveInstances(f.home).length, 0);
  assert.deepEqual(f.supervisor.deployments(), []);
  assert.equal(f.supervisor.desired("probe"), 0);
  const state = JSON.parse(await Deno.readTextFile(join(f.home, "nucleus", "state.json")));
  assert.deepEqual(state, { version: 1, deployments: [], instances: [] });
  assert.match(await logText(f.supervisor, "probe"), /probe-0 probe probe-0 stopping/);
  await rejects(f.supervisor.stop("probe"), "NOT_FOUND", /'probe' is not deployed/);
});

Deno.test("logs holds each instance's stdout and stderr lines with time and stream", async () => {
  await using f = await fixture();
  const before = Date.now();
  await f.supervisor.deploy({ cell: "probe", module: PROBE, instances: 2, sandbox: false });
  await waitFor(
    "both ready",
    async () => (await logText(f.supervisor, "probe")).split("ready").length === 3,
  );
  const lines = await f.supervisor.logs({ cell: "probe", instance_id: "probe-1" });
  assert(lines.every((l) => l.instance_id === "probe-1" && l.at_ms >= before));
  assert(
    lines.some((l) => l.stream === "stderr" && l.line === "probe probe-1 writes to stderr too"),
  );
  assert(lines.some((l) => l.stream === "stdout" && l.line === "probe probe-1 ready"));
  const tail = await f.supervisor.logs({ cell: "probe", instance_id: "probe-1", tail: 2 });
  assert.deepEqual(tail, lines.slice(-2));
  const files = [...Deno.readDirSync(join(f.home, "logs", "probe"))].map((e) => e.name).sort();
  for (const name of ["probe-0.err", "probe-0.out", "probe-1.err", "probe-1.out"]) {
    assert(files.includes(name), `${name} in ${files}`);
  }
});

Deno.test("a failed state write leaves the old state file intact and changes nothing", async () => {
  let full = false;
  await using f = await fixture({
    stateWriter: async (path, data) => {
      if (!full) return await writeDurably(path, data);
      await Deno.writeFile(path, data.subarray(0, 7));
      throw new Error("No space left on device (os error 28)");
    },
  });
  await f.supervisor.deploy({ cell: "probe", module: PROBE, instances: 1, sandbox: false });
  await waitFor("the probe to run", () => allRunning(f.supervisor, "probe"));
  const path = join(f.home, "nucleus", "state.json");
  const saved = await Deno.readTextFile(path);
  full = true;
  await rejects(
    f.supervisor.deploy({ cell: "crash", module: CRASH, instances: 1, sandbox: false }),
    "RESOURCE_EXHAUSTED",
    /Cannot save the nucleus state .* the previous state is kept and nothing changed: free space/,
  );
  await rejects(f.supervisor.scale("probe", 3), "RESOURCE_EXHAUSTED", /Cannot save/);
  await rejects(f.supervisor.stop("probe"), "RESOURCE_EXHAUSTED", /Cannot save/);
  assert.equal(await Deno.readTextFile(path), saved);
  assert.deepEqual([...Deno.readDirSync(join(f.home, "nucleus"))].map((e) => e.name), [
    "state.json",
  ]);
  assert.deepEqual(f.supervisor.deployments().map((d) => [d.cell, d.instances]), [["probe", 1]]);
  assert.deepEqual(liveInstances(f.home).map((i) => i.instanceId), ["probe-0"]);
  full = false;
  assert.equal((await f.supervisor.scale("probe", 2)).instances, 2);
});

Deno.test("a supervisor restarted after kill -9 adopts live instances without duplicates and restarts dead ones", async () => {
  await using f = await fixture();
  // The first nucleus is a process of its own, killed with SIGKILL like a crash would.
  const host = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./testdata/nucleus_host.ts", import.meta.url).pathname,
      f.home,
      "3",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = host.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  while (!first.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    first += value;
  }
  host.kill("SIGKILL");
  await host.status;
  await reader.cancel();
  const before = JSON.parse(first) as { status: { instance_id: string; pid: number }[] };
  assert.equal(before.status.length, 3);
  // One instance dies while no nucleus watches.
  Deno.kill(before.status[2]!.pid, "SIGKILL");
  await waitFor("probe-2 to die", () => liveInstances(f.home).length === 2);

  const next = f.another();
  await next.start();
  const after = status(next, "probe");
  assert.deepEqual(
    after.slice(0, 2).map((s) => s.pid),
    before.status.slice(0, 2).map((s) => s.pid),
  );
  assert(f.messages.some((m) => m === `probe-0 (pid ${before.status[0]!.pid}) adopted`));
  await waitFor("all 3 running", () => allRunning(next, "probe"));
  const live = liveInstances(f.home);
  assert.deepEqual(live.map((i) => i.instanceId), ["probe-0", "probe-1", "probe-2"]);
  assert.notEqual(live[2]!.pid, before.status[2]!.pid);

  // An adopted instance that dies is noticed (it is not our child: /proc is polled) and restarted.
  Deno.kill(before.status[0]!.pid, "SIGKILL");
  await waitFor("probe-0's restart", () => status(next, "probe")[0]!.restarts === 1);
  assert.match(status(next, "probe")[0]!.last_error!, /exit code unknown: it was adopted/);
  await waitFor("all 3 running again", () => allRunning(next, "probe"));
  assert.equal(liveInstances(f.home).length, 3);

  // Their output still reaches the logs after the adoption: SIGTERM makes them say goodbye.
  await next.stop("probe");
  assert.match(await logText(next, "probe"), /probe-1 probe probe-1 stopping/);
});

Deno.test("shutdown without stopping leaves the instances to the next supervisor", async () => {
  await using f = await fixture();
  await f.supervisor.deploy({ cell: "probe", module: PROBE, instances: 2, sandbox: false });
  await waitFor("2 running instances", () => allRunning(f.supervisor, "probe"));
  const pids = status(f.supervisor, "probe").map((s) => s.pid);
  await f.supervisor.shutdown({ stopInstances: false });
  await rejects(f.supervisor.scale("probe", 1), "UNAVAILABLE", /shut down/);
  const next = f.another();
  await next.start();
  assert.deepEqual(status(next, "probe").map((s) => s.pid), pids);
  assert.deepEqual(liveInstances(f.home).map((i) => i.pid), pids);
  await next.shutdown({ stopInstances: true });
  assert.equal(liveInstances(f.home).length, 0);
  // The deployment stays persisted for the next nucleus, with no processes.
  const state = JSON.parse(await Deno.readTextFile(join(f.home, "nucleus", "state.json")));
  assert.equal(state.deployments[0].instances, 2);
  assert.deepEqual(state.instances, []);
  killAll(f.home);
});
