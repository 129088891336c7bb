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

const at = (x: number, height = 0.0001) => ({ vec: [x, 0], error: 0.1, adjustment: 0, height });

Deno.test("nearest prefers the instance whose coordinate is nearest, spilling over under load", () => {
  const b = new Balancer("nearest");
  b.targets = ["far", "near", "mid"].map(target);
  b.targets[0]!.coordinate = at(0.05);
  b.targets[1]!.coordinate = at(0.001);
  b.targets[2]!.coordinate = at(0.01);
  b.source = at(0);
  assertEquals([1, 2, 3].map(() => b.pick(0)!.key), ["near", "near", "near"]);
  // RTT × (calls in flight + 1): 1 ms with 10 in flight costs more than 10 ms with none.
  b.targets[1]!.waiting = 10;
  assertEquals(b.pick(0)!.key, "mid");
  b.targets[1]!.downUntil = 100;
  b.targets[1]!.waiting = 0;
  assertEquals(b.pick(0)!.key, "mid");
});

Deno.test("nearest ranks by measured latencies first, and forgets them when they grow old", () => {
  const b = new Balancer("nearest");
  b.targets = ["a", "b"].map(target);
  b.targets[0]!.coordinate = at(0.001);
  b.targets[1]!.coordinate = at(0.02);
  b.source = at(0);
  // Measured: b answers in 0.5 ms (the minimum of its samples counts), a in 30 ms.
  for (const s of [0.004, 0.0005, 0.003]) b.targets[1]!.recordRtt(s, 0);
  b.targets[0]!.recordRtt(0.03, 0);
  assertEquals(b.pick(0)!.key, "b");
  // Samples older than 10 s no longer count: the coordinates decide again.
  assertEquals(b.pick(20_000)!.key, "a");
});

Deno.test("nearest falls back to least-outstanding when no RTT is known", () => {
  const b = new Balancer("nearest");
  b.targets = ["a", "b", "c"].map(target);
  assertEquals([1, 2, 3].map(() => b.pick(0)!.key).sort(), ["a", "b", "c"]);
  b.targets[0]!.waiting = 1;
  const picks = Array.from({ length: 10 }, () => b.pick(0)!.key);
  assertEquals(picks.includes("a"), false);
  // Coordinates without a source (no Vivaldi cell on this host) do not help either.
  for (const t of b.targets) t.coordinate = at(0.01);
  assertEquals(Array.from({ length: 10 }, () => b.pick(1000)!.key).includes("a"), false);
});

Deno.test("nearest tries an instance it knows nothing about, then ranks it by what it measured", () => {
  const b = new Balancer("nearest");
  b.targets = ["known", "new"].map(target);
  b.targets[0]!.recordRtt(0.01, 0);
  const first = [1, 2].map(() => b.pick(0)!.key);
  assertEquals(first.includes("new"), true); // ranked with the nearest known: gets a turn
  b.targets[1]!.recordRtt(0.05, 0);
  assertEquals([1, 2, 3].map(() => b.pick(1000)!.key), ["known", "known", "known"]);
});

Deno.test("mergeInstances passes the instances' coordinates on to their targets", () => {
  const c = at(0.02);
  const [t] = mergeInstances([], [{ ...instance("a"), coordinate: c }], undefined, () => {});
  assertEquals(t!.coordinate, c);
  const [again] = mergeInstances([t!], [instance("a")], undefined, () => {});
  assertEquals(again === t && again!.coordinate === undefined, true);
});

Deno.test("recordRtt ignores samples that are not plausible", () => {
  const t = target("a");
  for (const s of [NaN, -1, 0, Infinity, 1e9]) t.recordRtt(s, 0);
  assertEquals(t.rtt(undefined, 0), undefined);
});
