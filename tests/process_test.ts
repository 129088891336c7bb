// Server and client in separate processes.
import { CellError, connect } from "@cell/sdk";
import { tempCellHome } from "@cell/sdk/testing";
import type { Lab } from "./fixtures/cells.ts";
import { Greeter } from "./fixtures/cells.ts";
import { MyService } from "../examples/my_service/service.ts";
import { assert, assertEquals, spawnReady } from "./_helpers.ts";

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

Deno.test("a client process calls the example cell served by another process", async () => {
  await using home = await tempCellHome();
  const env = { CELL_HOME: home.path };
  await using _server = await spawnReady("../examples/my_service/main.ts", [], env);
  const client = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../examples/my_service/client.ts", import.meta.url).pathname,
      "Cell",
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(client.stdout), "Hello, Cell!\n");
  assert(client.success);
  // A client in this process, with the defaults the example's client uses, reaches the example
  // over the shared-memory ring: same host, both sides support it, nothing in the cell changed.
  await using direct = await connect("my-service", { service: MyService });
  assertEquals(await direct.greet({ name: "Ring" }), { greeting: "Hello, Ring!" });
  assertEquals(direct.$info.transport, "shm");
});

Deno.test("SIGTERM drains the in-flight call, removes the socket and exits 0", async () => {
  await using home = await tempCellHome();
  await using server = await spawnReady("./fixtures/serve_lab.ts", [], { CELL_HOME: home.path });
  const socket = `${home.path}/run/lab.sock`;
  assert(await exists(socket));
  await using lab = await connect<typeof Lab>("lab");
  const inFlight = lab.run({ tag: 7, delay_ms: 300 });
  await new Promise((r) => setTimeout(r, 100));
  server.process.kill("SIGTERM");
  assertEquals((await inFlight).tag, 7);
  const status = await server.process.status;
  assertEquals(status.code, 0);
  assert(!(await exists(socket)), "socket file left behind");
  // A call now finds nothing to talk to.
  const error = await lab.run({ tag: 8 }).catch((e) => e);
  assert(error instanceof CellError && error.code === "UNAVAILABLE", String(error));
});

Deno.test("a call in flight when the server is killed fails with UNAVAILABLE, not a hang", async () => {
  await using home = await tempCellHome();
  await using server = await spawnReady("./fixtures/serve_lab.ts", [], { CELL_HOME: home.path });
  await using lab = await connect<typeof Lab>("lab", { timeoutMs: 20_000 });
  const started = Date.now();
  const inFlight = lab.run({ delay_ms: 10_000 }).catch((e) => e);
  await new Promise((r) => setTimeout(r, 100));
  server.process.kill("SIGKILL");
  const error = await inFlight;
  assert(error instanceof CellError && error.code === "UNAVAILABLE", String(error));
  assert(Date.now() - started < 5000, "took too long to notice the dead server");
});

Deno.test("a socket left by a killed server is replaced by the next one", async () => {
  await using home = await tempCellHome();
  const env = { CELL_HOME: home.path };
  {
    await using first = await spawnReady("./fixtures/serve_lab.ts", [], env);
    first.process.kill("SIGKILL");
    await first.process.status;
  }
  assert(await exists(`${home.path}/run/lab.sock`), "the killed server should leave its socket");
  await using _second = await spawnReady("./fixtures/serve_lab.ts", [], env);
  await using lab = await connect<typeof Lab>("lab");
  assertEquals((await lab.run({ tag: 3 })).tag, 3);
});

Deno.test("the socket directory is private to the user", async () => {
  await using home = await tempCellHome();
  await using _server = await spawnReady("./fixtures/serve_lab.ts", [], { CELL_HOME: home.path });
  assertEquals((await Deno.stat(`${home.path}/run`)).mode! & 0o777, 0o700);
  assertEquals((await Deno.stat(`${home.path}/run/lab.sock`)).mode! & 0o777, 0o600);
  await using greeter = await connect("lab", { service: Greeter });
  assert(greeter.$info.schemaHash?.startsWith("sha256:"));
});
