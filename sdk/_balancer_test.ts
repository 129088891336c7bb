import { assertEquals } from "./_assert_test.ts";
import { Balancer, mergeInstances, Target } from "./_balancer.ts";
import { udsTransport } from "./uds.ts";
import type { InstanceInfo } from "./_discovery.ts";

const target = (key: string) => new Target(key, [{ transport: udsTransport, address: key }], key);

function instance(id: string, pid = 1): InstanceInfo {
  return {
    cell: "c",
    node_id: "1",
    instance_id: id,
    endpoints: [{ transport: "uds", address: `/run/c@${id}.sock` }],
    pid,
    metadata: {},
    health: "healthy",
    registered_at_ms: 1,
    last_heartbeat_ms: 1,
    in_flight: 0,
  };
}

Deno.test("round-robin takes turns and skips instances marked down", () => {
  const b = new Balancer("round-robin");
  b.targets = ["a", "b", "c"].map(target);
  assertEquals([1, 2, 3, 4, 5, 6].map(() => b.pick(0)!.key), ["a", "b", "c", "a", "b", "c"]);
  b.targets[1]!.downUntil = 100;
  assertEquals([1, 2, 3, 4].map(() => b.pick(0)!.key).includes("b"), false);
  assertEquals(b.pick(100)!.key !== undefined, true);
});

Deno.test("least-outstanding picks the least loaded, equals taking turns", () => {
  const b = new Balancer("least-outstanding");
  b.targets = ["a", "b", "c"].map(target);
  assertEquals([1, 2, 3].map(() => b.pick(0)!.key).sort(), ["a", "b", "c"]);
  b.targets[0]!.waiting = 1; // a is busy
  const picks = Array.from({ length: 10 }, () => b.pick(0)!.key);
  assertEquals(picks.filter((k) => k === "b").length, 5);
  assertEquals(picks.filter((k) => k === "c").length, 5);
});

Deno.test("when every instance is down, the one back soonest is tried", () => {
  const b = new Balancer("least-outstanding");
  b.targets = ["a", "b"].map(target);
  b.targets[0]!.downUntil = 50;
  b.targets[1]!.downUntil = 20;
  assertEquals(b.pick(0)!.key, "b");
});

Deno.test("an unknown balance is a TypeError that names the choices", () => {
  let error: unknown;
  try {
    new Balancer("random" as "round-robin");
  } catch (e) {
    error = e;
  }
  assertEquals(error instanceof TypeError && error.message.includes("round-robin"), true);
});

Deno.test("merging the nucleus's list keeps known instances, adds new, drains removed", () => {
  const drained: string[] = [];
  const first = mergeInstances([], [instance("a"), instance("b")], undefined, () => {});
  first[0]!.downUntil = 99;
  const second = mergeInstances(
    first,
    [instance("a", 2), instance("c")],
    undefined,
    (t) => drained.push(t.key),
  );
  assertEquals(second.map((t) => t.key), ["a", "c"]);
  assertEquals(second[0], first[0]); // same target, session kept
  assertEquals(second[0]!.downUntil, 0); // it restarted (new pid): up again
  assertEquals(drained, ["b"]);
  assertEquals(first[1]!.removed, true);
  // A nucleus that restarted knows nobody for a moment: keep calling the known instances.
  const none = mergeInstances(second, [], undefined, (t) => drained.push(t.key));
  assertEquals(none, second);
  assertEquals(drained, ["b"]);
});
