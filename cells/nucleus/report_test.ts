import assert from "node:assert/strict";
import { healthReport, topology } from "./report.ts";
import type { InstanceInfo } from "./registry.ts";

function instance(
  cell: string,
  health: InstanceInfo["health"],
  node_id = "1",
  instance_id = `${cell}-${Math.random()}`,
): InstanceInfo {
  return {
    cell,
    node_id,
    instance_id,
    endpoints: [],
    pid: 1,
    metadata: {},
    health,
    registered_at_ms: 0,
    last_heartbeat_ms: 0,
    in_flight: 0,
  };
}

Deno.test("healthReport() is healthy with no cells, listing this host", () => {
  const report = healthReport([], "1", new Map());
  assert.equal(report.status, "healthy");
  assert.deepEqual(report.cells, []);
  assert.deepEqual(report.hosts, [
    { node_id: "1", cells: 0, instances: 0, healthy: 0, status: "healthy" },
  ]);
});

Deno.test("healthReport() grades cells healthy, degraded and down", () => {
  const report = healthReport(
    [
      instance("a", "healthy"),
      instance("b", "healthy"),
      instance("b", "unhealthy"),
      instance("c", "starting"),
      instance("d", "healthy"),
    ],
    "1",
    new Map([["d", 3], ["e", 1]]),
  );
  const byCell = Object.fromEntries(report.cells.map((c) => [c.cell, c]));
  assert.equal(byCell.a?.status, "healthy");
  assert.equal(byCell.b?.status, "degraded");
  assert.equal(byCell.b?.unhealthy, 1);
  assert.equal(byCell.c?.status, "down", "starting instances serve nothing yet");
  assert.deepEqual(byCell.d, {
    cell: "d",
    healthy: 1,
    unhealthy: 0,
    desired: 3,
    status: "degraded",
  });
  assert.equal(byCell.e?.status, "down", "a deployed cell with no instance is down");
  assert.equal(report.status, "degraded");
  assert.deepEqual(report.hosts[0], {
    node_id: "1",
    cells: 4,
    instances: 5,
    healthy: 3,
    status: "degraded",
  });
});

Deno.test("healthReport() is down when every cell is down", () => {
  const report = healthReport([instance("a", "expired", "2")], "1", new Map());
  assert.equal(report.status, "down");
  assert.deepEqual(report.hosts.map((h) => [h.node_id, h.status]), [["1", "healthy"], [
    "2",
    "down",
  ]]);
});

Deno.test("topology() lists this host first, then the others with their instances", () => {
  const result = topology(
    [instance("b", "healthy", "2", "b1"), instance("a", "healthy", "2", "a1")],
    "1",
  );
  assert.equal(result.node_id, "1");
  assert.deepEqual(result.hosts.map((h) => h.node_id), ["1", "2"]);
  assert.deepEqual(result.hosts[1]?.instances.map((i) => i.instance_id), ["a1", "b1"]);
});
