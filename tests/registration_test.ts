// serve() registers every cell with the nucleus, keeps it registered, and leaves on shutdown;
// NucleusClient does the same for processes that serve in other ways.
import { CellError, connect, NucleusClient, serve } from "@cell/sdk";
import { Nucleus } from "@cell/sdk/nucleus_api";
import { tempCellHome } from "@cell/sdk/testing";
import { Greeter } from "./fixtures/cells.ts";
import { assert, assertEquals, waitFor } from "./_helpers.ts";
import { quietNucleus } from "./_instances.ts";

const greeter = () => Greeter.implement({ greet: ({ name }) => ({ greeting: `Hi ${name}` }) });
const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

async function instancesOf(home: string, cell: string) {
  await using nucleus = await connect<Nucleus>("nucleus", { service: Nucleus, home });
  return (await nucleus.discover({ cell, all: true })).instances;
}

Deno.test("serve() registers with the nucleus, heartbeats, and deregisters on shutdown", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: 200 });
  const server = await serve("greeter", greeter(), {
    handleSignals: false,
    instanceId: "g1",
    metadata: { version: "1.2.3" },
  });
  const [instance] = await instancesOf(home.path, "greeter");
  assert(instance, "not registered");
  assertEquals(instance.instance_id, "g1");
  assertEquals(instance.health, "healthy"); // the first heartbeat goes with the registration
  assertEquals(instance.pid, Deno.pid);
  assertEquals(instance.metadata, { version: "1.2.3" });
  // Shared memory first when this process can serve it, then the instance's own socket.
  const uds = { transport: "uds", address: `${home.path}/run/greeter@g1.sock` };
  const shm = server.endpoints.find((e) => e.startsWith("shm:"));
  assertEquals(
    instance.endpoints,
    shm ? [{ transport: "shm", address: shm.slice(4) }, uds] : [uds],
  );
  const first = instance.last_heartbeat_ms;
  await waitFor(async () =>
    (await instancesOf(home.path, "greeter"))[0]!.last_heartbeat_ms > first
  );
  assertEquals(server.instanceId, "g1");
  await server.shutdown();
  assertEquals(await instancesOf(home.path, "greeter"), []);
});

Deno.test("serve() registers again within one interval after the nucleus restarts", async () => {
  await using home = await tempCellHome();
  const intervalMs = 300;
  let nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: intervalMs });
  await using server = await serve("greeter", greeter(), { handleSignals: false });
  assertEquals((await instancesOf(home.path, "greeter")).length, 1);
  await nucleus.stop();
  await new Promise((r) => setTimeout(r, 2 * intervalMs)); // heartbeats fail meanwhile, quietly
  nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: intervalMs });
  try {
    const back = Date.now();
    await waitFor(async () => (await instancesOf(home.path, "greeter")).length === 1, 3000);
    const took = Date.now() - back;
    assert(took <= intervalMs + 150, `registered again after ${took} ms`);
    // The nucleus picked the id; it is kept across registrations only when given.
    assert(server.instanceId);
  } finally {
    await server.shutdown();
    await nucleus.stop();
  }
});

Deno.test("serve() without a nucleus serves on run/<cell>.sock as before and prints nothing", async () => {
  await using home = await tempCellHome();
  const printed: unknown[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => printed.push(args);
  try {
    await using server = await serve("greeter", greeter(), { handleSignals: false });
    assert(
      server.endpoints.includes(`uds:${home.path}/run/greeter.sock`),
      String(server.endpoints),
    );
    await new Promise((r) => setTimeout(r, 1200)); // a quiet retry or two
    await using client = await connect("greeter", {
      service: Greeter,
      address: `${home.path}/run/greeter.sock`,
    });
    assertEquals((await client.greet({ name: "x" })).greeting, "Hi x");
    await using local = await connect("greeter", { service: Greeter });
    assertEquals(local.$info.transport, "inproc");
    assertEquals(local.$info.instance, undefined);
  } finally {
    console.error = error;
  }
  assertEquals(printed, []);
  assert(!(await exists(`${home.path}/run/nucleus.sock`)));
});

Deno.test("CELL_NUCLEUS=0 and register: false keep serve() out of the registry", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path);
  {
    await using _server = await serve("quiet", greeter(), {
      handleSignals: false,
      register: false,
    });
    assertEquals(await instancesOf(home.path, "quiet"), []);
  }
  Deno.env.set("CELL_NUCLEUS", "0");
  try {
    await using _server = await serve("quiet", greeter(), { handleSignals: false });
    assertEquals(await instancesOf(home.path, "quiet"), []);
  } finally {
    Deno.env.delete("CELL_NUCLEUS");
  }
});

Deno.test("CELL_INSTANCE_ID names the socket, and a bad one is refused with what to do", async () => {
  await using home = await tempCellHome();
  Deno.env.set("CELL_INSTANCE_ID", "web-1.blue");
  try {
    await using server = await serve("greeter", greeter(), { handleSignals: false });
    assert(await exists(`${home.path}/run/greeter@web-1.blue.sock`));
    assertEquals(server.instanceId, "web-1.blue");
    Deno.env.set("CELL_INSTANCE_ID", "../etc");
    const error = await serve("greeter2", greeter(), { handleSignals: false }).catch((e) => e);
    assert(error instanceof TypeError && error.message.includes("CELL_INSTANCE_ID"), String(error));
  } finally {
    Deno.env.delete("CELL_INSTANCE_ID");
  }
});

Deno.test("NucleusClient registers, discovers, watches, and reports health and topology", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: 200 });
  await using nucleus = await NucleusClient.connect();
  const { version } = await nucleus.discover("tool");
  const changed = nucleus.watch("tool", version, 5000);
  await using instance = await nucleus.register("tool", "1", { instanceId: "t1" });
  assertEquals(instance.instanceId, "t1");
  let seen = await changed;
  assert(seen.version > version);
  // Registered, then healthy with its first heartbeat: each is a change.
  while (seen.instances.length === 0) seen = await nucleus.watch("tool", seen.version, 5000);
  assertEquals(seen.instances.map((i) => i.instance_id), ["t1"]);
  await new Promise((r) => setTimeout(r, 500)); // heartbeats keep it healthy
  assertEquals((await nucleus.discover("tool")).instances[0]?.health, "healthy");
  assert((await nucleus.health()).cells.some((c) => c.cell === "tool" && c.healthy === 1));
  assert((await nucleus.topology()).hosts.some((h) => h.instances.some((i) => i.cell === "tool")));
  await instance.close();
  assertEquals((await nucleus.discover("tool")).instances, []);
});

Deno.test("NucleusClient.connect() fails with UNAVAILABLE when no nucleus runs", async () => {
  await using _home = await tempCellHome();
  const error = await NucleusClient.connect().catch((e) => e);
  assert(error instanceof CellError && error.code === "UNAVAILABLE", String(error));
});
