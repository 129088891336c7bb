/**
 * The leader's rules: replication with pipelining and fast backtracking, the commit rule (only
 * entries of the current term by counting), heartbeats, check-quorum, ReadIndex rounds, leadership
 * transfer and snapshots for lagging followers. Internal: use `Raft` from `raft.ts`.
 *
 * @module
 */
import type { AnyRaftMessage, AppendResponse, HeartbeatResponse } from "./_raft_messages.ts";
import type { LeaderHooks, RaftCore } from "./_raft_core.ts";
import { Progress, quorum, quorumIndex } from "./_raft_progress.ts";
import type { MemberId } from "./types.ts";

/** Installs the leader rules on `core`. */
export function installLeader(core: RaftCore): void {
  const hooks: LeaderHooks = {
    becomeLeader: () => becomeLeader(core),
    tick: () => tick(core),
    step: (m) => step(core, m),
    flush: () => flush(core),
    maybeCommit: () => maybeCommit(core),
    onConfigChange: () => syncProgress(core),
  };
  core.leaderHooks = hooks;
}

function becomeLeader(core: RaftCore): void {
  core.role = "leader";
  core.leader = core.id;
  core.progress.clear();
  core.electionElapsed = 0;
  core.heartbeatElapsed = 0;
  syncProgress(core);
  const index = core.log.lastIndex + 1;
  core.log.append([{ index, term: core.term, type: "noop", data: new Uint8Array() }]);
  core.refreshConfig();
}

/** Keeps one progress per member other than self. */
function syncProgress(core: RaftCore): void {
  for (const id of core.members) {
    if (id !== core.id && !core.progress.has(id)) {
      core.progress.set(id, new Progress(core.log.lastIndex + 1));
    }
  }
  for (const id of [...core.progress.keys()]) {
    if (!core.members.includes(id)) core.progress.delete(id);
  }
}

function tick(core: RaftCore): void {
  core.electionElapsed++;
  core.heartbeatElapsed++;
  for (const pr of core.progress.values()) {
    if (pr.state === "snapshot" && ++pr.snapshotTicks > core.opts.electionTicks) pr.becomeProbe();
  }
  if (core.electionElapsed >= core.opts.electionTicks) {
    core.electionElapsed = 0;
    core.leadTransferee = null;
    if (core.opts.checkQuorum) {
      let active = core.members.includes(core.id) ? 1 : 0;
      for (const [id, pr] of core.progress) {
        if (pr.recentActive && core.members.includes(id)) active++;
        pr.recentActive = false;
      }
      if (active < quorum(core.members.length)) {
        core.becomeFollower(core.term, null);
        return;
      }
    }
  }
  if (core.heartbeatElapsed >= core.opts.heartbeatTicks) {
    core.heartbeatElapsed = 0;
    broadcastHeartbeat(core);
  }
}

function broadcastHeartbeat(core: RaftCore): void {
  const context = core.reads.at(-1)?.round ?? "";
  for (const [to, pr] of core.progress) {
    const commit = Math.min(pr.match, core.log.committed);
    pr.commitSent = Math.max(pr.commitSent, commit);
    core.send({ type: "heartbeat", to, commit, context });
  }
}

function step(core: RaftCore, m: AnyRaftMessage): void {
  const pr = core.progress.get(m.from);
  switch (m.type) {
    case "append_resp":
      if (pr) handleAppendResponse(core, m, pr);
      return;
    case "heartbeat_resp":
      if (pr) handleHeartbeatResponse(core, m, pr);
      return;
    case "read_index":
      return requestRead(core, m.from, m.context);
    default:
      return;
  }
}

function handleAppendResponse(core: RaftCore, m: AppendResponse, pr: Progress): void {
  pr.recentActive = true;
  if (m.reject) {
    if (pr.state === "replicate" ? m.index <= pr.match : m.index !== pr.next - 1) return; // stale
    const leaderHas = m.hintTerm > 0 ? core.log.lastIndexOfTerm(m.hintTerm) : -1;
    const guess = leaderHas >= 0 ? leaderHas + 1 : m.hintIndex;
    pr.becomeProbe();
    pr.next = Math.max(pr.match + 1, Math.min(guess, m.index));
    return;
  }
  const moved = pr.update(m.index);
  if (pr.state === "probe" && moved) pr.becomeReplicate();
  if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
  if (moved) maybeCommit(core);
  if (core.leadTransferee === m.from && pr.match === core.log.lastIndex) {
    core.send({ type: "timeout_now", to: m.from });
  }
}

function handleHeartbeatResponse(core: RaftCore, m: HeartbeatResponse, pr: Progress): void {
  pr.recentActive = true;
  pr.paused = false;
  if (pr.match < core.log.lastIndex) pr.force = true;
  if (m.context === "") return;
  const at = core.reads.findIndex((r) => r.round === m.context);
  if (at < 0) return;
  const read = core.reads[at]!;
  read.acks.add(m.from);
  const acked = core.members.filter((id) => read.acks.has(id)).length;
  if (acked < quorum(core.members.length)) return;
  for (const r of core.reads.splice(0, at + 1)) releaseRead(core, r.requester, r.context, r.index);
}

function releaseRead(core: RaftCore, requester: MemberId, context: string, index: number): void {
  if (requester === core.id) core.readStates.push({ context, index });
  else core.send({ type: "read_index_resp", to: requester, context, index });
}

/** Starts a ReadIndex round (or parks it until an entry of this term is committed). */
export function requestRead(core: RaftCore, requester: MemberId, context: string): void {
  if (core.log.term(core.log.committed) !== core.term) {
    core.waitingReads.push({ requester, context });
    return;
  }
  const index = core.log.committed;
  if (core.members.length === 1 && core.members[0] === core.id) {
    releaseRead(core, requester, context, index);
    return;
  }
  const round = `${core.term}:${++core.readRound}`;
  core.reads.push({ round, index, acks: new Set([core.id]), requester, context });
  broadcastHeartbeat(core);
}

/** Advances the commit index to what a quorum holds, if that entry is of the current term. */
function maybeCommit(core: RaftCore): boolean {
  const index = quorumIndex(
    core.members,
    (id) => id === core.id ? core.log.stable : core.progress.get(id)?.match ?? 0,
  );
  if (index <= core.log.committed || core.log.term(index) !== core.term) return false;
  const firstOfTerm = core.log.term(core.log.committed) !== core.term;
  core.log.commitTo(index);
  if (firstOfTerm) {
    const waiting = core.waitingReads;
    core.waitingReads = [];
    for (const w of waiting) requestRead(core, w.requester, w.context);
  }
  if (!core.members.includes(core.id) && core.log.committed >= core.log.lastConfigIndex) {
    core.becomeFollower(core.term, null); // Removed: step down once the removal is committed.
  }
  return true;
}

/** Sends what each follower is missing, batched: one append per `maxBatch` entries. */
function flush(core: RaftCore): void {
  for (const [to, pr] of core.progress) {
    while (sendAppend(core, to, pr)) { /* keep pipelining */ }
    const commit = Math.min(pr.match, core.log.committed);
    if (commit > pr.commitSent) {
      // Nothing new to send, but followers should learn the commit index without a heartbeat wait.
      pr.commitSent = commit;
      core.send({ type: "heartbeat", to, commit, context: "" });
    }
  }
}

/** Sends one append (or a snapshot); returns whether another may follow at once. */
function sendAppend(core: RaftCore, to: MemberId, pr: Progress): boolean {
  const { log, opts } = core;
  if (pr.state === "snapshot") return false;
  const force = pr.force;
  if (pr.state === "probe" && pr.paused && !force) return false;
  if (pr.state === "replicate" && pr.inflight.length >= opts.maxInflight) {
    if (!force) return false;
    pr.inflight.shift();
  }
  pr.force = false;
  const prevIndex = pr.next - 1;
  const prevTerm = log.term(prevIndex);
  if (prevTerm === undefined) {
    const snapshot = log.snapshot;
    if (snapshot === null) throw new Error(`No snapshot to send to "${to}" at ${prevIndex}`);
    pr.becomeSnapshot(snapshot.meta.index);
    core.send({ type: "snapshot", to, snapshot });
    return false;
  }
  const entries = log.slice(pr.next, log.lastIndex, opts.maxBatch);
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    bytes += entries[i]!.data.byteLength;
    if (bytes > opts.maxBatchBytes && i > 0) {
      entries.length = i;
      break;
    }
  }
  if (entries.length === 0 && !force) return false;
  core.send({ type: "append", to, prevIndex, prevTerm, entries, commit: log.committed });
  pr.commitSent = Math.max(
    pr.commitSent,
    Math.min(log.committed, entries.at(-1)?.index ?? prevIndex),
  );
  if (pr.state === "probe") {
    pr.paused = true;
    return false;
  }
  if (entries.length === 0) return false;
  pr.next = entries.at(-1)!.index + 1;
  pr.inflight.push(pr.next - 1);
  return true;
}
