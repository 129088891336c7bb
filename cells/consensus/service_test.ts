import assert from "node:assert/strict";
import { CellError, type Client, connect } from "@cell/sdk";
import { startLocalCluster } from "./testing.ts";
import { Consensus, notLeaderOf } from "./service.ts";
import { connectConsensus } from "./client.ts";

const IDS = ["a", "b", "c"];

/** Three members in this process, and a plain SDK client of one member's socket. */
async function startCluster() {
  const cluster = await startLocalCluster({ ids: IDS });
  /** A plain SDK client of one member's socket. */
  const direct = (id: string): Promise<Client<Consensus>> =>
    connect<Consensus>("consensus", {
      service: Consensus,
      address: `${cluster.home}/run/consensus@${id}.sock`,
      transport: "uds",
      maxAttempts: 1,
    });
  return Object.assign(cluster, { direct });
}

Deno.test("a follower answers a write with FAILED_PRECONDITION naming the leader", async () => {
  await using cluster = await startCluster();
  const leader = await cluster.leader();
  const follower = IDS.find((id) => id !== leader)!;
  await using client = await cluster.direct(follower);
  const error = await client.write({ key: "k", value: "v" }).then(() => undefined, (e) => e);
  assert.ok(error instanceof CellError);
  assert.equal(error.code, "FAILED_PRECONDITION");
  assert.deepEqual(notLeaderOf(error), { reason: "NOT_LEADER", member: follower, leader });
  assert.match(error.message, new RegExp(`send the call to "${leader}"`));
});

Deno.test("connectConsensus() redirects a write sent to a follower to the leader", async () => {
  await using cluster = await startCluster();
  const leader = await cluster.leader();
  const follower = IDS.find((id) => id !== leader)!;
  // The client knows only the follower: the hint is all it has to find the leader.
  await using kv = await connectConsensus({ members: [follower], home: cluster.home });
  const result = await kv.write({ key: "greeting", value: "hello" });
  assert.equal(result.ok, true);
  assert.equal(result.previous, null);
  assert.ok(result.index > 0);
  assert.equal(kv.leader, leader);
  assert.ok(kv.known.includes(leader));
});

Deno.test("every member answers linearizable and stale reads of a committed write", async () => {
  await using cluster = await startCluster();
  await cluster.leader();
  await using kv = await connectConsensus({ members: IDS, home: cluster.home });
  const { index } = await kv.write({ key: "x", value: "1" });
  for (const id of IDS) {
    await using client = await cluster.direct(id);
    const read = await client.read({ key: "x" });
    assert.deepEqual(read.value, "1", `linearizable read on ${id}`);
    assert.ok(read.index >= index);
    // A stale read answers from the member's state: wait for it to apply the write.
    for (const end = Date.now() + 5000;;) {
      const stale = await client.read({ key: "x", stale: true });
      if (stale.value === "1") break;
      assert.ok(Date.now() < end, `${id} never applied the write`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const absent = await client.read({ key: "nothing" });
    assert.equal(absent.value, undefined);
  }
  assert.deepEqual(await kv.read({ key: "x", stale: true }).then((r) => r.value), "1");
});

Deno.test("status() reports each member's role, term, leader, indexes and the leader's lag", async () => {
  await using cluster = await startCluster();
  const leader = await cluster.leader();
  await using kv = await connectConsensus({ members: IDS, home: cluster.home });
  await kv.write({ key: "k", value: "v" });
  const reports = await kv.statuses();
  assert.deepEqual(reports.map((r) => r.id), IDS);
  const statuses = reports.map((r) => r.status!);
  assert.deepEqual(statuses.map((s) => s.role === "leader" ? s.id : null).filter(Boolean), [
    leader,
  ]);
  for (const s of statuses) {
    assert.equal(s.leader, leader);
    assert.deepEqual([...s.members].sort(), IDS);
    assert.ok(s.commitIndex >= 1 && s.appliedIndex <= s.commitIndex);
  }
  const fromLeader = statuses.find((s) => s.id === leader)!;
  assert.deepEqual(Object.keys(fromLeader.lag).sort(), IDS.filter((id) => id !== leader));
  const status = await kv.status();
  assert.equal(status.leader, leader);
  assert.deepEqual(await kv.members(), { members: fromLeader.members, leader });
});

Deno.test("cas and delete report the value they found", async () => {
  await using cluster = await startCluster();
  await cluster.leader();
  await using kv = await connectConsensus({ members: IDS, home: cluster.home });
  assert.equal((await kv.cas({ key: "lock", expected: null, value: "me" })).ok, true);
  const lost = await kv.cas({ key: "lock", expected: null, value: "you" });
  assert.deepEqual([lost.ok, lost.previous], [false, "me"]);
  const swapped = await kv.cas({ key: "lock", expected: "me", value: null });
  assert.deepEqual([swapped.ok, swapped.previous], [true, "me"]);
  assert.equal((await kv.read({ key: "lock" })).value, null);
  await kv.write({ key: "gone", value: "soon" });
  assert.equal((await kv.delete({ key: "gone" })).previous, "soon");
  assert.equal((await kv.read({ key: "gone" })).value, null);
});

Deno.test("writes continue on a new leader after the leader stops", async () => {
  await using cluster = await startCluster();
  const first = await cluster.leader();
  await using kv = await connectConsensus({ members: IDS, home: cluster.home, timeoutMs: 10_000 });
  await kv.write({ key: "before", value: "1" });
  await cluster.members.get(first)!.stop();
  cluster.members.delete(first);
  await kv.write({ key: "after", value: "2" });
  assert.notEqual(kv.leader, first);
  assert.equal((await kv.read({ key: "before" })).value, "1");
  assert.equal((await kv.read({ key: "after" })).value, "2");
});

Deno.test("a stopped member answers UNAVAILABLE, and a client with no reachable leader says so", async () => {
  await using cluster = await startCluster();
  await cluster.leader();
  for (const id of ["b", "c"]) {
    await cluster.members.get(id)!.stop();
    cluster.members.delete(id);
  }
  await using kv = await connectConsensus({ members: IDS, home: cluster.home, timeoutMs: 800 });
  const error = await kv.write({ key: "k", value: "v" }).then(() => undefined, (e) => e);
  assert.ok(error instanceof CellError);
  assert.equal(error.code, "UNAVAILABLE");
  assert.match(error.message, /No leader answered write of "k" within 800 ms among members/);
  assert.match(error.message, /check that a majority of them run/);
});
