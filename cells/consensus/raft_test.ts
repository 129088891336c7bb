import assert from "node:assert/strict";
import { appendEntries, installSnapshot } from "./_storage_state.ts";
import { type AppendMessage, Raft, type RaftOptions, type ReadState } from "./raft.ts";
import type { LoadedState, MemberId, RaftMessage } from "./types.ts";

interface Member {
  raft: Raft;
  disk: LoadedState;
  applied: number[];
  reads: ReadState[];
}

/** Members passing messages by hand: nothing moves until `stabilize()`. */
class Cluster {
  members = new Map<MemberId, Member>();
  queue: RaftMessage[] = [];
  sent: RaftMessage[] = [];
  blocked = new Set<string>();
  drop: (m: RaftMessage) => boolean = () => false;

  constructor(ids: MemberId[], options: Partial<RaftOptions> = {}) {
    for (const id of ids) this.add(id, ids, options);
  }

  add(id: MemberId, members: MemberId[], options: Partial<RaftOptions> = {}): Raft {
    const disk: LoadedState = {
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: null,
      entries: [],
    };
    let seed = id.charCodeAt(id.length - 1);
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const raft = new Raft({ id, members, random, ...options });
    this.members.set(id, { raft, disk, applied: [], reads: [] });
    return raft;
  }

  get(id: MemberId): Raft {
    return this.members.get(id)!.raft;
  }

  /** Cuts every link between `id` and the others. */
  isolate(...ids: MemberId[]): void {
    for (const id of ids) {
      for (const other of this.members.keys()) {
        if (other === id) continue;
        this.blocked.add(`${id}>${other}`);
        this.blocked.add(`${other}>${id}`);
      }
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Persists, sends and applies every ready; delivers messages until nothing moves. */
  stabilize(rounds = 200): void {
    for (let i = 0; i < rounds; i++) {
      for (const m of this.members.values()) {
        while (m.raft.hasReady()) {
          const rd = m.raft.ready();
          if (rd.snapshot) {
            installSnapshot(m.disk, rd.snapshot);
            m.applied.push(-rd.snapshot.meta.index);
          }
          appendEntries(m.disk, rd.entries);
          if (rd.hardState) m.disk.hardState = rd.hardState;
          this.queue.push(...rd.messages);
          m.applied.push(...rd.committedEntries.map((e) => e.index));
          m.reads.push(...rd.readStates);
          m.raft.advance(rd);
        }
      }
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      for (const msg of batch) {
        if (this.blocked.has(`${msg.from}>${msg.to}`) || this.drop(msg)) continue;
        this.sent.push(msg);
        this.members.get(msg.to)?.raft.step(msg);
      }
    }
  }

  tick(id: MemberId, n: number): void {
    for (let i = 0; i < n; i++) {
      this.get(id).tick();
      this.stabilize();
    }
  }

  tickAll(ids: MemberId[], n: number): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.get(id).tick();
      this.stabilize();
    }
  }

  elect(id: MemberId): Raft {
    this.get(id).campaign();
    this.stabilize();
    assert.equal(this.get(id).role, "leader");
    return this.get(id);
  }

  propose(id: MemberId, ...values: string[]): void {
    this.get(id).propose(values.map((v) => new TextEncoder().encode(v)));
    this.stabilize();
  }
}

Deno.test("campaign() elects a leader that commits a noop of its term on every member", () => {
  const c = new Cluster(["n1", "n2", "n3"]);
  const leader = c.elect("n1");
  assert.equal(leader.term, 1);
  for (const id of ["n1", "n2", "n3"]) {
    assert.equal(c.get(id).leader, "n1");
    assert.equal(c.get(id).commitIndex, 1);
    assert.deepEqual(c.members.get(id)!.applied, [1]);
  }
  assert.ok(c.sent.some((m) => m.type === "prevote"), "a pre-vote round ran first");
});

Deno.test("ticks alone elect exactly one leader", () => {
  const c = new Cluster(["n1", "n2", "n3"]);
  for (let t = 0; t < 40; t++) for (const id of ["n1", "n2", "n3"]) c.tick(id, 1);
  const leaders = ["n1", "n2", "n3"].filter((id) => c.get(id).role === "leader");
  assert.equal(leaders.length, 1);
});

Deno.test("pre-vote keeps a partitioned member from disrupting the leader when it rejoins", () => {
  for (const preVote of [true, false]) {
    const c = new Cluster(["n1", "n2", "n3"], { preVote });
    c.elect("n1");
    c.isolate("n3");
    c.tick("n3", 100); // Many election timeouts alone.
    c.heal();
    c.propose("n1", "x");
    c.tick("n1", 2);
    if (preVote) {
      assert.equal(c.get("n3").term, 1, "the isolated member never raised its term");
      assert.equal(c.get("n1").role, "leader");
      assert.equal(c.get("n1").term, 1);
      assert.equal(c.get("n3").leader, "n1");
    } else {
      assert.ok(c.get("n3").term > 1, "without pre-vote the rejoining member bumps the term");
      assert.notEqual(c.get("n1").term, 1);
    }
  }
});

Deno.test("a new leader overwrites a follower's conflicting uncommitted suffix", () => {
  const c = new Cluster(["n1", "n2", "n3"]);
  c.elect("n1");
  c.isolate("n1");
  c.propose("n1", "lost-1", "lost-2", "lost-3"); // Never leaves n1.
  c.heal();
  c.isolate("n1");
  c.tickAll(["n2", "n3"], 40); // n2 or n3 times out and wins.
  const id = c.get("n2").role === "leader" ? "n2" : "n3";
  assert.equal(c.get(id).role, "leader");
  c.propose(id, "kept-1", "kept-2");
  c.heal();
  c.tick(id, 2);
  assert.equal(c.get("n1").role, "follower");
  const terms = (id: MemberId) =>
    Array.from({ length: c.get(id).lastIndex }, (_, i) => c.get(id).termAt(i + 1));
  assert.deepEqual(terms("n1"), terms(id));
  assert.equal(c.get("n1").commitIndex, c.get(id).commitIndex);
  assert.equal(c.get("n1").lastIndex, 4);
  const rejects = c.sent.filter((m) => m.type === "append_resp" && m.reject && m.from === "n1");
  assert.ok(rejects.length <= 2, `fast backtracking needed ${rejects.length} rejections`);
});

Deno.test("a leader does not commit an old-term entry by counting replicas (Figure 8)", () => {
  const ids = ["s1", "s2", "s3", "s4", "s5"];
  const c = new Cluster(ids, { maxBatch: 1, checkQuorum: false });
  c.elect("s1");
  // (a) s1 replicates index 2 (term 1) to s2 only.
  c.isolate("s3", "s4", "s5");
  c.propose("s1", "a");
  assert.equal(c.get("s2").lastIndex, 2);
  // (b) s5 wins term 2 with s3 and s4 and appends index 2 (term 2) locally only.
  c.heal();
  c.isolate("s1", "s2");
  c.drop = (m) => m.from === "s5" && m.type === "append";
  c.get("s5").campaign();
  c.stabilize();
  assert.equal(c.get("s5").role, "leader");
  assert.equal(c.get("s5").termAt(2), 2);
  // (c) s5 is gone; s1 wins a later term and brings index 2 (term 1) to s3, but not its noop.
  c.heal();
  c.isolate("s5");
  c.drop = (m) =>
    m.type === "append" && (m as AppendMessage).entries.some((e) => e.index >= 3) &&
    c.get(m.to).lastIndex >= 2;
  c.tick("s1", 1); // s1 still leads term 1: its heartbeat teaches it the newer term.
  for (let i = 0; i < 3 && c.get("s1").role !== "leader"; i++) {
    c.get("s1").campaign();
    c.stabilize();
  }
  assert.equal(c.get("s1").role, "leader");
  assert.equal(c.get("s3").termAt(2), 1);
  assert.equal(c.get("s1").commitIndex, 1, "index 2 sits on a majority but is of an old term");
  // (d) Once an entry of the current term reaches a majority, both commit.
  c.drop = () => false;
  c.tick("s1", 2);
  assert.equal(c.get("s1").commitIndex, 3);
});

Deno.test("transferLeadership() hands over to a caught-up follower in a new term", () => {
  const c = new Cluster(["n1", "n2", "n3"]);
  c.elect("n1");
  c.isolate("n2");
  c.propose("n1", "x", "y");
  c.heal();
  c.get("n1").transferLeadership("n2"); // n2 lags: catch it up first.
  assert.throws(() => c.get("n1").propose([new Uint8Array([1])]), { name: "NotLeaderError" });
  c.tick("n1", 1);
  assert.equal(c.get("n2").role, "leader");
  assert.equal(c.get("n2").term, 2);
  assert.equal(c.get("n1").leader, "n2");
  assert.equal(c.get("n2").lastIndex, 4); // noop, x, y, and n2's noop.
});

Deno.test("proposeMembers() adds and removes one member at a time", () => {
  const c = new Cluster(["n1", "n2", "n3"]);
  c.elect("n1");
  c.add("n4", []); // Joins empty: learns the config from the leader.
  c.get("n1").proposeMembers(["n1", "n2", "n3", "n4"]);
  assert.throws(() => c.get("n1").proposeMembers(["n1", "n2", "n3"]), /in progress/);
  c.tick("n1", 2);
  for (const id of ["n1", "n2", "n3", "n4"]) {
    assert.deepEqual(c.get(id).members, ["n1", "n2", "n3", "n4"]);
    assert.equal(c.get(id).commitIndex, 2);
  }
  assert.throws(() => c.get("n1").proposeMembers(["n1"]), RangeError);
  c.get("n1").proposeMembers(["n1", "n2", "n4"]);
  c.tick("n1", 2);
  assert.deepEqual(c.get("n2").members, ["n1", "n2", "n4"]);
  // The leader removes itself: it steps down once the change is committed.
  c.get("n1").proposeMembers(["n2", "n4"]);
  c.tick("n1", 2);
  assert.notEqual(c.get("n1").role, "leader");
  c.isolate("n1");
  c.tickAll(["n2", "n4"], 40);
  assert.ok(["n2", "n4"].some((id) => c.get(id).role === "leader"));
});

Deno.test("a lagging follower is caught up by InstallSnapshot after compaction", () => {
  const c = new Cluster(["n1", "n2", "n3"]);
  c.elect("n1");
  c.isolate("n3");
  c.propose("n1", "a", "b", "c", "d");
  const leader = c.get("n1");
  leader.compact(leader.appliedIndex, new TextEncoder().encode("state@5"));
  c.heal();
  c.tick("n1", 2);
  assert.ok(c.sent.some((m) => m.type === "snapshot" && m.to === "n3"));
  const n3 = c.members.get("n3")!;
  assert.equal(n3.disk.snapshot?.meta.index, 5);
  assert.equal(n3.raft.commitIndex, 5);
  assert.deepEqual(n3.applied, [1, -5]);
  c.propose("n1", "e");
  assert.deepEqual(n3.applied, [1, -5, 6]);
});

Deno.test("readIndex() answers after a heartbeat round, on the leader and via a follower", () => {
  const c = new Cluster(["n1", "n2", "n3"]);
  c.elect("n1");
  c.propose("n1", "a");
  c.get("n1").readIndex("r1");
  assert.ok(c.sent.length > 0);
  c.stabilize();
  assert.deepEqual(c.members.get("n1")!.reads, [{ context: "r1", index: 2 }]);
  c.get("n2").readIndex("f1");
  c.stabilize();
  assert.deepEqual(c.members.get("n2")!.reads, [{ context: "f1", index: 2 }]);
  // A leader cut off from the quorum cannot confirm a read.
  c.isolate("n1");
  c.get("n1").readIndex("r2");
  c.stabilize();
  assert.equal(c.members.get("n1")!.reads.length, 1);
});

Deno.test("check-quorum makes an isolated leader step down within an election timeout", () => {
  const c = new Cluster(["n1", "n2", "n3"], { electionTicks: 10 });
  c.elect("n1");
  c.isolate("n1");
  c.tick("n1", 21);
  assert.equal(c.get("n1").role, "follower");
});
