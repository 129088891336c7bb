import assert from "node:assert/strict";
import { MemoryStorage } from "./memory_storage.ts";
import { createNode } from "./node.ts";
import { SimClock } from "./sim/clock.ts";
import { Scheduler } from "./sim/scheduler.ts";
import type { ConsensusNode, RaftMessage } from "./types.ts";

/** Three members on a lossless virtual network. */
async function cluster(options: { snapshotEvery?: number } = {}) {
  const scheduler = new Scheduler();
  const nodes = new Map<string, ConsensusNode>();
  const storages = new Map<string, MemoryStorage>();
  const ids = ["n1", "n2", "n3"];
  let seed = 1;
  for (const id of ids) {
    const storage = new MemoryStorage();
    storages.set(id, storage);
    const node = await createNode({
      id,
      members: ids,
      storage,
      send: (m: RaftMessage) => scheduler.at(1, () => nodes.get(m.to)?.receive(m)),
      clock: new SimClock(scheduler),
      random: () => ((seed = (seed * 16807) % 2147483647) / 2147483647),
      snapshotEvery: options.snapshotEvery,
    });
    nodes.set(id, node);
  }
  const leader = async () => {
    await scheduler.run(
      scheduler.now + 2000,
      () => [...nodes.values()].some((n) => n.status().role === "leader"),
    );
    return [...nodes.values()].find((n) => n.status().role === "leader")!;
  };
  const settle = (ms = 200) => scheduler.run(scheduler.now + ms);
  return { scheduler, nodes, storages, leader, settle };
}

Deno.test("write() on the leader resolves once applied; read() is linearizable on every member", async () => {
  const c = await cluster();
  const leader = await c.leader();
  const pending = leader.write({ op: "put", key: "k", value: "v" });
  await c.settle();
  const result = await pending;
  assert.equal(result.ok, true);
  assert.equal(result.previous, null);
  for (const node of c.nodes.values()) {
    const read = node.read("k");
    await c.settle();
    assert.equal((await read).value, "v");
  }
  for (const node of c.nodes.values()) await node.stop();
});

Deno.test("write() on a follower rejects with NotLeaderError naming the leader", async () => {
  const c = await cluster();
  const leader = await c.leader();
  await c.settle();
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  await assert.rejects(
    follower.write({ op: "delete", key: "k" }),
    (e: Error & { leader?: string }) =>
      e.name === "NotLeaderError" && e.leader === leader.status().id,
  );
  for (const node of c.nodes.values()) await node.stop();
});

Deno.test("many writes in one turn share one sync per member", async () => {
  const c = await cluster();
  const leader = await c.leader();
  await c.settle();
  const id = leader.status().id;
  const before = c.storages.get(id)!.syncs;
  const writes = Array.from(
    { length: 64 },
    (_, i) => leader.write({ op: "put", key: `k${i}`, value: "v" }),
  );
  await c.settle();
  assert.equal((await Promise.all(writes)).length, 64);
  assert.ok(c.storages.get(id)!.syncs - before <= 2, `${c.storages.get(id)!.syncs - before} syncs`);
  for (const node of c.nodes.values()) await node.stop();
});

Deno.test("members snapshot every snapshotEvery entries and stale reads answer locally", async () => {
  const c = await cluster({ snapshotEvery: 10 });
  const leader = await c.leader();
  for (let i = 0; i < 25; i++) {
    const w = leader.write({ op: "put", key: "k", value: String(i) });
    await c.settle(20);
    await w;
  }
  await c.settle();
  for (const [id, storage] of c.storages) {
    assert.ok((storage.state.snapshot?.meta.index ?? 0) >= 20, `${id} took no snapshot`);
    assert.equal((await c.nodes.get(id)!.read("k", { stale: true })).value, "24");
  }
  for (const node of c.nodes.values()) await node.stop();
});

Deno.test("transferLeadership() moves leadership; stop() fails pending calls", async () => {
  const c = await cluster();
  const leader = await c.leader();
  await c.settle();
  const to = [...c.nodes.keys()].find((id) => id !== leader.status().id)!;
  const moved = leader.transferLeadership(to);
  await c.settle(500);
  await moved;
  assert.equal(c.nodes.get(to)!.status().role, "leader");
  const newLeader = c.nodes.get(to)!;
  const orphan = newLeader.write({ op: "put", key: "x", value: "y" });
  await newLeader.stop();
  await assert.rejects(orphan, /stopped/);
  for (const node of c.nodes.values()) await node.stop();
});
