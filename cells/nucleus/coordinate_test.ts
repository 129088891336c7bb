import assert from "node:assert/strict";
import { CellError } from "@cell/sdk";
import { ManualClock } from "./clock.ts";
import { Registry } from "./registry.ts";

const at = (x: number, height = 0.0001) => ({ vec: [x, 0], error: 0.5, adjustment: 0, height });

function setup() {
  const registry = new Registry({ nodeId: "1", clock: new ManualClock(1_000), maxMissed: 3 });
  const lease = registry.register({ cell: "c", node_id: "", endpoints: [], pid: 1 });
  registry.heartbeat({ lease_id: lease.lease_id });
  return { registry, lease, [Symbol.dispose]: () => registry.close() };
}

Deno.test("a heartbeat's coordinate lands on the instance record; one without keeps it", () => {
  using s = setup();
  s.registry.heartbeat({ lease_id: s.lease.lease_id, coordinate: at(0.01) });
  assert.deepEqual(s.registry.discover("c").instances[0]!.coordinate, at(0.01));
  s.registry.heartbeat({ lease_id: s.lease.lease_id });
  assert.deepEqual(s.registry.discover("c").instances[0]!.coordinate, at(0.01));
});

Deno.test("watchers hear of a coordinate only when it moved far enough to matter", async () => {
  using s = setup();
  const { version } = s.registry.discover("c");
  const woken = s.registry.watch("c", version, { waitMs: 10_000 });
  s.registry.heartbeat({ lease_id: s.lease.lease_id, coordinate: at(0.01) });
  const first = await woken;
  assert.deepEqual(first.instances[0]!.coordinate, at(0.01));
  // 0.1 ms further: recorded, but no broadcast.
  s.registry.heartbeat({ lease_id: s.lease.lease_id, coordinate: at(0.0101) });
  assert.equal(s.registry.version, first.version);
  assert.deepEqual(s.registry.discover("c").instances[0]!.coordinate, at(0.0101));
  s.registry.heartbeat({ lease_id: s.lease.lease_id, coordinate: at(0.03) });
  assert.ok(s.registry.version > first.version);
});

Deno.test("a NaN, infinite or negative coordinate is refused with INVALID_ARGUMENT", () => {
  using s = setup();
  for (
    const bad of [
      at(NaN),
      at(Infinity),
      { ...at(0), height: -1 },
      { ...at(0), error: -0.1 },
      { ...at(0), vec: [] },
      { ...at(0), vec: new Array(33).fill(0) },
    ]
  ) {
    assert.throws(
      () => s.registry.heartbeat({ lease_id: s.lease.lease_id, coordinate: bad }),
      (e: unknown) => e instanceof CellError && e.code === "INVALID_ARGUMENT",
    );
    assert.throws(() => s.registry.setHostCoordinate(bad), CellError);
  }
  assert.equal(s.registry.discover("c").instances[0]!.coordinate, undefined);
  assert.equal(s.registry.hostCoordinate, undefined);
});

Deno.test("the host's coordinate is answered with discovery and wakes watchers when it moves", async () => {
  using s = setup();
  assert.equal(s.registry.discover("c").coordinate, undefined);
  const { version } = s.registry.discover("c");
  const woken = s.registry.watch("c", version, { waitMs: 10_000 });
  s.registry.setHostCoordinate(at(0.02));
  assert.deepEqual((await woken).coordinate, at(0.02));
  assert.deepEqual(s.registry.hostCoordinate, at(0.02));
});
