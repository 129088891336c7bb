import assert from "node:assert/strict";
import { join } from "node:path";
import { CellError, type Client, connect } from "@cell/sdk";
import { Nucleus } from "@cell/sdk/nucleus_api";
import { tempCellHome } from "@cell/sdk/testing";
import {
  type NucleusOptions,
  resolveNodeId,
  type RunningNucleus,
  startNucleus,
} from "./nucleus.ts";

interface Fixture extends AsyncDisposable {
  home: string;
  nucleus: RunningNucleus;
  client: Client<typeof Nucleus>;
  logs: string[];
}

async function fixture(options: NucleusOptions = {}): Promise<Fixture> {
  const home = await tempCellHome();
  const logs: string[] = [];
  const nucleus = await startNucleus({
    home: home.path,
    nodeId: "7",
    log: (m) => logs.push(m),
    ...options,
  });
  const client = await connect<typeof Nucleus>("nucleus", { service: Nucleus, home: home.path });
  return {
    home: home.path,
    nucleus,
    client,
    logs,
    async [Symbol.asyncDispose]() {
      await client.$close();
      await nucleus.stop();
      await home.cleanup();
    },
  };
}

const register = (client: Client<typeof Nucleus>, cell = "my-service", pid = Deno.pid) =>
  client.register({
    cell,
    node_id: "",
    endpoints: [{ transport: "uds", address: `/tmp/${cell}.sock` }],
    pid,
  });

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(error instanceof CellError, `expected a CellError, got ${error}`);
  return error.code;
}

Deno.test("the nucleus registers, discovers and reports health over its socket", async () => {
  await using f = await fixture();
  assert.equal(f.client.$info.address, join(f.home, "run", "nucleus.sock"));
  const lease = await register(f.client);
  assert.equal((await f.client.discover({ cell: "my-service" })).instances.length, 0);
  await f.client.heartbeat({ lease_id: lease.lease_id });
  const { instances } = await f.client.discover({ cell: "my-service" });
  assert.equal(instances.length, 1);
  assert.equal(instances[0]?.node_id, "7");
  assert.equal(instances[0]?.pid, Deno.pid);
  const health = await f.client.health({});
  assert.equal(health.status, "healthy");
  assert.equal(health.cells[0]?.healthy, 1);
  const topology = await f.client.topology({});
  assert.equal(topology.node_id, "7");
  assert.equal(topology.hosts[0]?.instances.length, 1);
  await f.client.deregister({ lease_id: lease.lease_id });
  assert.equal((await f.client.discover({ cell: "my-service", all: true })).instances.length, 0);
  assert.ok(f.logs.some((l) => l.includes("registered")));
});

Deno.test("bad input gets a clear error and the nucleus keeps serving", async () => {
  await using f = await fixture();
  assert.equal(await codeOf(register(f.client, "Not A Name")), "INVALID_ARGUMENT");
  assert.equal(await codeOf(f.client.heartbeat({ lease_id: "nope" })), "NOT_FOUND");
  const metadata = { blob: "x".repeat(100_000) };
  const oversized = f.client.register({
    cell: "big",
    node_id: "",
    endpoints: [],
    pid: 1,
    metadata,
  });
  assert.equal(await codeOf(oversized), "INVALID_ARGUMENT");
  assert.equal(await codeOf(f.client.discover({ cell: "../etc" })), "INVALID_ARGUMENT");
  assert.equal(await codeOf(f.client.watch({ cell: "A", since: 1 })), "INVALID_ARGUMENT");
  assert.equal(
    await codeOf(f.client.$call("register", { cell: "x", pid: -1 })),
    "INVALID_ARGUMENT",
  );
  const first = await register(f.client, "dup");
  const duplicate = f.client.register({
    cell: "dup",
    node_id: "",
    instance_id: first.instance_id,
    endpoints: [],
    pid: 1,
  });
  assert.equal(await codeOf(duplicate), "ALREADY_EXISTS");
  // Still serving.
  await f.client.heartbeat({ lease_id: first.lease_id });
  assert.equal((await f.client.discover({ cell: "dup" })).instances.length, 1);
});

Deno.test("watch() over the socket wakes when an instance becomes healthy", async () => {
  await using f = await fixture();
  const { version } = await f.client.discover({ cell: "my-service" });
  const watched = f.client.watch({ cell: "my-service", since: version, wait_ms: 5000 });
  const lease = await register(f.client);
  await f.client.heartbeat({ lease_id: lease.lease_id });
  const result = await watched;
  assert.ok(result.version > version);
});

Deno.test("watch() answers with the unchanged state before the call's deadline", async () => {
  await using f = await fixture();
  const { version } = await f.client.discover({ cell: "quiet" });
  const started = Date.now();
  const result = await f.client.watch({ cell: "quiet", since: version }, { timeoutMs: 600 });
  assert.equal(result.version, version);
  assert.ok(Date.now() - started < 600);
});

Deno.test("an instance that stops heartbeating expires and is removed", async () => {
  await using f = await fixture({ heartbeatIntervalMs: 50, maxMissed: 2 });
  const lease = await register(f.client);
  assert.equal(lease.heartbeat_interval_ms, 50);
  assert.equal(lease.max_missed, 2);
  await f.client.heartbeat({ lease_id: lease.lease_id });
  await new Promise((r) => setTimeout(r, 250));
  assert.equal((await f.client.discover({ cell: "my-service", all: true })).instances.length, 0);
  assert.equal(await codeOf(f.client.heartbeat({ lease_id: lease.lease_id })), "NOT_FOUND");
  assert.ok(f.logs.some((l) => l.includes("expired")));
});

Deno.test("a second nucleus on the same home fails with ALREADY_EXISTS naming the first's pid", async () => {
  await using f = await fixture();
  const error = await startNucleus({ home: f.home, nodeId: "7", log: () => {} }).catch((e) => e);
  assert.ok(error instanceof CellError && error.code === "ALREADY_EXISTS", String(error));
  assert.match(error.message, new RegExp(`already running on ${f.home} \\(pid ${Deno.pid}\\)`));
  // The first one still serves.
  await f.client.health({});
});

Deno.test("a stopped nucleus removes its socket and lock, and another can start", async () => {
  await using home = await tempCellHome();
  const first = await startNucleus({ home: home.path, nodeId: "1", log: () => {} });
  await first.stop();
  const run = await Array.fromAsync(Deno.readDir(join(home.path, "run")));
  assert.deepEqual(run.map((e) => e.name), []);
  const second = await startNucleus({ home: home.path, nodeId: "1", log: () => {} });
  assert.equal(second.tookOverFrom, undefined);
  await second.stop();
});

Deno.test("resolveNodeId() reads config.json, then CELL_NODE_ID, then the hostname", async () => {
  await using home = await tempCellHome();
  assert.equal(await resolveNodeId(home.path), Deno.env.get("CELL_NODE_ID") || Deno.hostname());
  await Deno.writeTextFile(join(home.path, "config.json"), JSON.stringify({ node_id: 42 }));
  assert.equal(await resolveNodeId(home.path), "42");
  await Deno.writeTextFile(join(home.path, "config.json"), "{oops");
  await assert.rejects(() => resolveNodeId(home.path), /cell init/);
});
