// The nucleus as a process: one per Cell home, stale locks taken over, clean shutdown.
import { connect } from "@cell/sdk";
import { Nucleus } from "@cell/sdk/nucleus_api";
import { tempCellHome } from "@cell/sdk/testing";
import { assert, assertEquals, spawnReady, waitFor } from "./_helpers.ts";

const MAIN = "../cells/nucleus/main.ts";
const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

async function runToEnd(home: string): Promise<{ code: number; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(MAIN, import.meta.url).pathname],
    env: { CELL_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("a second nucleus on the same CELL_HOME exits non-zero naming the first's pid", async () => {
  await using home = await tempCellHome();
  await using first = await spawnReady(MAIN, [], { CELL_HOME: home.path });
  const second = await runToEnd(home.path);
  assertEquals(second.code, 1);
  assert(
    second.stderr.includes(
      `A nucleus is already running on ${home.path} (pid ${first.process.pid})`,
    ),
    second.stderr,
  );
  // The first one is unharmed.
  await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus });
  assertEquals((await client.health({})).status, "healthy");
});

Deno.test("a nucleus killed with SIGKILL leaves a lock that the next nucleus takes over", async () => {
  await using home = await tempCellHome();
  const env = { CELL_HOME: home.path };
  let killedPid: number;
  {
    await using first = await spawnReady(MAIN, [], env);
    killedPid = first.process.pid;
    first.process.kill("SIGKILL");
    await first.process.status;
  }
  const lock = `${home.path}/run/nucleus.lock`;
  assert(await exists(lock), "the killed nucleus should leave its lock file");
  assert((await Deno.readTextFile(lock)).includes(`"pid":${killedPid}`));
  await using second = await spawnReady(MAIN, [], env);
  assert((await Deno.readTextFile(lock)).includes(`"pid":${second.process.pid}`));
  await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus });
  const lease = await client.register({ cell: "after-crash", node_id: "", endpoints: [], pid: 1 });
  assert(lease.lease_id.length > 0);
});

Deno.test("SIGTERM stops the nucleus with exit 0 and removes its socket and lock", async () => {
  await using home = await tempCellHome();
  await using nucleus = await spawnReady(MAIN, ["--heartbeat-ms", "250", "--max-missed", "2"], {
    CELL_HOME: home.path,
  });
  await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus });
  const lease = await client.register({ cell: "flags", node_id: "", endpoints: [], pid: 1 });
  assertEquals(lease.heartbeat_interval_ms, 250);
  assertEquals(lease.max_missed, 2);
  nucleus.process.kill("SIGTERM");
  assertEquals((await nucleus.process.status).code, 0);
  assert(!(await exists(`${home.path}/run/nucleus.sock`)), "socket left behind");
  assert(!(await exists(`${home.path}/run/nucleus.lock`)), "lock left behind");
});

Deno.test("the nucleus refuses a bad flag with exit code 2", async () => {
  await using home = await tempCellHome();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(MAIN, import.meta.url).pathname, "--heartbeat-ms", "soon"],
    env: { CELL_HOME: home.path },
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(output.code, 2);
  assert(new TextDecoder().decode(output.stderr).includes("--heartbeat-ms must be"));
});

Deno.test("after a nucleus is killed, the next one finds its deployed instances registered again", async () => {
  await using home = await tempCellHome();
  const env = { CELL_HOME: home.path };
  const module = new URL("../examples/my_service/main.ts", import.meta.url).pathname;
  let pid: number | undefined;
  {
    await using first = await spawnReady(MAIN, [], env);
    await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus });
    await client.deploy({ cell: "my-service", module, instances: 1, sandbox: false });
    await waitFor(async () => {
      pid = (await client.discover({ cell: "my-service" })).instances[0]?.pid;
      return pid !== undefined;
    }, 30_000);
    first.process.kill("SIGKILL");
    await first.process.status;
  }
  await using _second = await spawnReady(MAIN, [], env);
  await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus });
  try {
    // The instance outlived the nucleus; its heartbeat gets NOT_FOUND and it registers again.
    await waitFor(async () => {
      const { instances } = await client.discover({ cell: "my-service" });
      return instances.length === 1 && instances[0]!.pid === pid;
    }, 15_000);
  } finally {
    await client.stop({ cell: "my-service" }).catch(() => {});
    try {
      Deno.kill(pid!, "SIGKILL");
    } catch {
      // Stopped already.
    }
  }
});

Deno.test({
  name:
    "on a machine that never built the ring's library, sandboxed instances still serve on the ring",
  ignore: !(await exists("/usr/bin/bwrap")),
  fn: async () => {
    await using home = await tempCellHome();
    const cache = await Deno.makeTempDir({ prefix: "cell-fresh-cache-" });
    // Keep Deno's own cache where it is: only the ring's library cache starts empty.
    const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
    const denoDir = (JSON.parse(new TextDecoder().decode(info.stdout)) as { denoDir: string })
      .denoDir;
    const env = { CELL_HOME: home.path, XDG_CACHE_HOME: cache, DENO_DIR: denoDir };
    const module = new URL("../examples/my_service/main.ts", import.meta.url).pathname;
    try {
      await using _nucleus = await spawnReady(MAIN, [], env);
      await using client = await connect<typeof Nucleus>("nucleus", { service: Nucleus });
      const deployment = await client.deploy({ cell: "my-service", module, instances: 1 });
      assertEquals(deployment.sandbox, "bwrap");
      try {
        let endpoints: string[] = [];
        await waitFor(async () => {
          const [found] = (await client.discover({ cell: "my-service" })).instances;
          endpoints = found?.endpoints.map((e) => e.transport) ?? [];
          return endpoints.length > 0;
        }, 30_000);
        // The nucleus built the library before launching: the read-only sandbox could not.
        assertEquals(endpoints, ["shm", "uds"]);
      } finally {
        await client.stop({ cell: "my-service" });
      }
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  },
});
