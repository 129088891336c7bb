import assert from "node:assert/strict";
import { type InstanceInfo, rankInstances } from "./service.ts";

const at = (x: number, height = 0.001) => ({ vec: [x, 0], error: 0.2, adjustment: 0, height });

function instance(id: string, coordinate?: ReturnType<typeof at>, node_id = "1"): InstanceInfo {
  return {
    cell: "c",
    node_id,
    instance_id: id,
    endpoints: [],
    pid: 1,
    metadata: {},
    health: "healthy",
    registered_at_ms: 0,
    last_heartbeat_ms: 0,
    in_flight: 0,
    ...(coordinate ? { coordinate } : {}),
  };
}

Deno.test("rankInstances() sorts by estimated RTT in ms, unknown coordinates last in order", () => {
  const routes = rankInstances(
    [instance("x"), instance("far", at(0.05)), instance("y"), instance("near", at(0.002))],
    at(0),
  );
  assert.deepEqual(routes.map((r) => r.instance.instance_id), ["near", "far", "x", "y"]);
  assert.ok(Math.abs(routes[0]!.rtt_ms! - 4) < 1e-9, String(routes[0]!.rtt_ms)); // 2 + 1 + 1 ms
  assert.equal(routes[2]!.rtt_ms, undefined);
});

Deno.test("rankInstances() keeps max_results and uses the fallback for instances without one", () => {
  const host = at(0.01);
  const routes = rankInstances(
    [instance("far", at(0.05)), instance("here"), instance("remote", undefined, "2")],
    at(0),
    2,
    (i) => i.node_id === "1" ? host : undefined,
  );
  assert.deepEqual(routes.map((r) => r.instance.instance_id), ["here", "far"]);
});

Deno.test("rankInstances() without a source, or across dimensions, estimates nothing", () => {
  const routes = rankInstances([instance("a", at(0.01))], undefined);
  assert.equal(routes[0]!.rtt_ms, undefined);
  const other = rankInstances([instance("a", at(0.01))], { ...at(0), vec: [0, 0, 0] });
  assert.equal(other[0]!.rtt_ms, undefined);
});
