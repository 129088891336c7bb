import assert from "node:assert/strict";
import { CellError, type Infer } from "@cell/sdk";
import type { RegisterRequest } from "@cell/sdk/nucleus_api";
import { ManualClock } from "./clock.ts";
import { Registry, type RegistryOptions } from "./registry.ts";

const START = 1_700_000_000_000;

function setup(options: Partial<RegistryOptions> = {}) {
  const clock = new ManualClock(START);
  const registry = new Registry({
    nodeId: "1",
    clock,
    heartbeatIntervalMs: 1000,
    maxMissed: 3,
    ...options,
  });
  return { clock, registry, [Symbol.dispose]: () => registry.close() };
}

function request(
  cell = "my-service",
  extra: Partial<Infer<typeof RegisterRequest>> = {},
): Infer<typeof RegisterRequest> {
  return {
    cell,
    node_id: "",
    endpoints: [{ transport: "uds", address: `/run/${cell}.sock` }],
    pid: 100,
    ...extra,
  };
}

function codeOf(action: () => unknown): string {
  try {
    action();
  } catch (e) {
    assert.ok(e instanceof CellError, String(e));
    return e.code;
  }
  assert.fail("expected a CellError");
}

Deno.test("register() grants a lease and the instance starts as 'starting'", () => {
  using t = setup();
  const lease = t.registry.register(request());
  assert.equal(lease.heartbeat_interval_ms, 1000);
  assert.equal(lease.max_missed, 3);
  assert.match(lease.instance_id, /^my-service-/);
  const [instance] = t.registry.discover("my-service", true).instances;
  assert.equal(instance?.health, "starting");
  assert.equal(instance?.node_id, "1", "an empty node_id is the nucleus's own");
  assert.equal(instance?.registered_at_ms, START);
  assert.equal(t.registry.discover("my-service").instances.length, 0, "not healthy yet");
});

Deno.test("the first heartbeat makes an instance healthy, healthy:false unhealthy", () => {
  using t = setup();
  const { lease_id } = t.registry.register(request());
  t.clock.tick(10);
  t.registry.heartbeat({ lease_id, in_flight: 4 });
  const healthy = t.registry.discover("my-service").instances;
  assert.equal(healthy.length, 1);
  assert.equal(healthy[0]?.health, "healthy");
  assert.equal(healthy[0]?.in_flight, 4);
  assert.equal(healthy[0]?.last_heartbeat_ms, START + 10);
  t.registry.heartbeat({ lease_id, healthy: false });
  assert.equal(t.registry.discover("my-service").instances.length, 0);
  assert.equal(t.registry.discover("my-service", true).instances[0]?.health, "unhealthy");
});

Deno.test("an instance expires after maxMissed missed heartbeats, then is removed", () => {
  using t = setup();
  const { lease_id } = t.registry.register(request());
  t.registry.heartbeat({ lease_id });
  t.clock.tick(2999);
  assert.equal(t.registry.discover("my-service").instances[0]?.health, "healthy");
  t.clock.tick(501);
  assert.equal(t.registry.discover("my-service", true).instances[0]?.health, "expired");
  assert.equal(codeOf(() => t.registry.heartbeat({ lease_id })), "NOT_FOUND");
  t.clock.tick(1000);
  assert.equal(t.registry.size, 0);
});

Deno.test("heartbeats keep an instance alive indefinitely", () => {
  using t = setup({ maxMissed: 2 });
  const { lease_id } = t.registry.register(request());
  for (let i = 0; i < 20; i++) {
    t.clock.tick(1000);
    t.registry.heartbeat({ lease_id });
  }
  assert.equal(t.registry.discover("my-service").instances.length, 1);
});

Deno.test("heartbeat() with an unknown lease fails with NOT_FOUND saying to register again", () => {
  using t = setup();
  assert.throws(
    () => t.registry.heartbeat({ lease_id: "no-such-lease" }),
    (e: unknown) =>
      e instanceof CellError && e.code === "NOT_FOUND" && /register again/.test(e.message),
  );
});

Deno.test("register() refuses an invalid cell name with INVALID_ARGUMENT", () => {
  using t = setup();
  for (const cell of ["", "My Service", "-x", "a".repeat(64)]) {
    assert.equal(codeOf(() => t.registry.register(request(cell))), "INVALID_ARGUMENT", cell);
  }
  assert.equal(t.registry.size, 0);
});

Deno.test("register() refuses oversized metadata, bad ids and too many endpoints", () => {
  using t = setup();
  const big = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
  const cases: Partial<Infer<typeof RegisterRequest>>[] = [
    { metadata: big },
    { metadata: { k: "v".repeat(1025) } },
    {
      metadata: Object.fromEntries(
        Array.from({ length: 20 }, (_, i) => [`k${i}`, "v".repeat(1000)]),
      ),
    },
    { instance_id: "../../etc/passwd" },
    { node_id: "bad node" },
    { endpoints: Array.from({ length: 17 }, () => ({ transport: "uds", address: "/x" })) },
    { endpoints: [{ transport: "", address: "/x" }] },
  ];
  for (const extra of cases) {
    assert.equal(codeOf(() => t.registry.register(request("x", extra))), "INVALID_ARGUMENT");
  }
  assert.equal(t.registry.size, 0);
});

Deno.test("a duplicate live instance id from another process fails with ALREADY_EXISTS", () => {
  using t = setup();
  t.registry.register(request("my-service", { instance_id: "a1", pid: 100 }));
  assert.throws(
    () => t.registry.register(request("my-service", { instance_id: "a1", pid: 200 })),
    (e: unknown) =>
      e instanceof CellError && e.code === "ALREADY_EXISTS" && /'a1'/.test(e.message) &&
      /pid 100/.test(e.message),
  );
});

Deno.test("the same process registering its instance id again replaces its old lease", () => {
  using t = setup();
  const first = t.registry.register(request("my-service", { instance_id: "a1", pid: 100 }));
  const second = t.registry.register(request("my-service", { instance_id: "a1", pid: 100 }));
  assert.equal(second.instance_id, "a1");
  assert.notEqual(second.lease_id, first.lease_id);
  assert.equal(t.registry.size, 1);
  assert.equal(codeOf(() => t.registry.heartbeat({ lease_id: first.lease_id })), "NOT_FOUND");
  t.registry.heartbeat({ lease_id: second.lease_id });
});

Deno.test("an expired instance id may be taken by another process", () => {
  using t = setup();
  t.registry.register(request("my-service", { instance_id: "a1", pid: 100 }));
  t.clock.tick(3500);
  const lease = t.registry.register(request("my-service", { instance_id: "a1", pid: 200 }));
  assert.equal(lease.instance_id, "a1");
  assert.equal(t.registry.discover("my-service", true).instances[0]?.pid, 200);
});

Deno.test("deregister() and removeInstance() remove at once; unknown ones are no error", () => {
  using t = setup();
  const a = t.registry.register(request());
  const b = t.registry.register(request());
  assert.equal(t.registry.deregister(a.lease_id), true);
  assert.equal(t.registry.deregister(a.lease_id), false);
  assert.equal(t.registry.removeInstance(b.instance_id, "another-cell"), false);
  assert.equal(t.registry.removeInstance(b.instance_id, "my-service"), true);
  assert.equal(t.registry.removeInstance(b.instance_id), false);
  assert.equal(t.registry.size, 0);
});

Deno.test("register() fails with RESOURCE_EXHAUSTED beyond maxInstances", () => {
  using t = setup({ maxInstances: 2 });
  t.registry.register(request());
  t.registry.register(request());
  assert.equal(codeOf(() => t.registry.register(request())), "RESOURCE_EXHAUSTED");
});

Deno.test("discover() answers copies: later heartbeats do not change an earlier answer", () => {
  using t = setup();
  const { lease_id } = t.registry.register(request());
  const before = t.registry.discover("my-service", true);
  t.registry.heartbeat({ lease_id });
  assert.equal(before.instances[0]?.health, "starting");
  assert.ok(t.registry.discover("my-service").version > before.version);
});

Deno.test("watch() wakes when its cell changes, not when another cell does", async () => {
  using t = setup();
  const { version } = t.registry.discover("my-service");
  let answered = false;
  const watched = t.registry.watch("my-service", version, { waitMs: 60_000 }).then((r) => {
    answered = true;
    return r;
  });
  t.registry.register(request("other"));
  await Promise.resolve();
  assert.equal(answered, false);
  const { lease_id } = t.registry.register(request("my-service"));
  t.registry.heartbeat({ lease_id });
  const result = await watched;
  assert.ok(result.version > version);
  assert.equal(t.registry.watching, 0);
});

Deno.test("watch() answers the unchanged state after waitMs", async () => {
  using t = setup();
  const { version } = t.registry.discover("my-service");
  const watched = t.registry.watch("my-service", version, { waitMs: 5000 });
  t.clock.tick(5000);
  const result = await watched;
  assert.equal(result.version, version);
  assert.equal(result.instances.length, 0);
});

Deno.test("watch() answers at once for since 0, a changed cell, or a version from the future", async () => {
  using t = setup();
  t.registry.register(request());
  const options = { waitMs: 60_000 };
  assert.equal((await t.registry.watch("my-service", 0, options)).version, t.registry.version);
  assert.equal((await t.registry.watch("my-service", 1, options)).version, t.registry.version);
  assert.equal((await t.registry.watch("my-service", 1e9, options)).version, t.registry.version);
  assert.equal(t.registry.watching, 0);
});

Deno.test("watch() with an empty cell wakes on a change to any cell", async () => {
  using t = setup();
  const watched = t.registry.watch("", t.registry.version, { waitMs: 60_000 });
  t.registry.register(request("anything"));
  assert.equal((await watched).instances.length, 0, "starting instances are not listed");
});

Deno.test("many watchers are woken by one change and leave no timers behind", async () => {
  using t = setup();
  const since = t.registry.version;
  const timersBefore = t.clock.pending;
  const watches = Array.from(
    { length: 10_000 },
    () => t.registry.watch("my-service", since, { waitMs: 60_000 }),
  );
  assert.equal(t.registry.watching, 10_000);
  t.registry.register(request());
  const answers = await Promise.all(watches);
  assert.ok(answers.every((a) => a.version > since));
  assert.equal(t.registry.watching, 0);
  assert.equal(t.clock.pending, timersBefore);
});

Deno.test("watch() answers at once when its signal aborts, and close() answers every watcher", async () => {
  using t = setup();
  const controller = new AbortController();
  const aborted = t.registry.watch("a", t.registry.version, {
    waitMs: 60_000,
    signal: controller.signal,
  });
  const closed = t.registry.watch("b", t.registry.version, { waitMs: 60_000 });
  controller.abort();
  await aborted;
  t.registry.close();
  await closed;
  assert.equal(codeOf(() => t.registry.register(request())), "UNAVAILABLE");
});

Deno.test("the Registry refuses a heartbeat interval or maxMissed out of range", () => {
  assert.throws(() => new Registry({ nodeId: "1", heartbeatIntervalMs: 0 }), RangeError);
  assert.throws(() => new Registry({ nodeId: "1", maxMissed: 0 }), RangeError);
});
