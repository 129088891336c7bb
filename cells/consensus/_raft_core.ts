/**
 * The state and the role-independent rules of the Raft core: terms, elections with pre-vote,
 * followers' handling of appends and snapshots, and what `ready()` hands out. Leader-side rules
 * live in `_raft_leader.ts`. Internal: use `Raft` from `raft.ts`.
 *
 * @module
 */
import type {
  AnyRaftMessage,
  AppendMessage,
  HeartbeatMessage,
  SnapshotMessage,
  VoteMessage,
  VoteResponse,
} from "./_raft_messages.ts";
import { RaftLog } from "./_raft_log.ts";
import { type Progress, quorum } from "./_raft_progress.ts";
import type { Entry, HardState, LoadedState, MemberId, Role, Snapshot } from "./types.ts";

/** A read that may be served once the state machine has applied `index`. */
/** Ticks between the end of a voter's leader lease and the earliest election timeout. */
const LEASE_MARGIN_TICKS = 2;

export interface ReadState {
  /** The id the read was requested with. */
  context: string;
  /** Apply at least this index, then read. */
  index: number;
}

/** A ReadIndex round on the leader, waiting for a quorum of heartbeat answers. */
export interface PendingRead {
  /** The leader's round id, carried by heartbeats. */
  round: string;
  /** Commit index when the read arrived. */
  index: number;
  /** Members that answered the round. */
  acks: Set<MemberId>;
  /** Who asked. */
  requester: MemberId;
  /** The requester's id for the read. */
  context: string;
}

/** Tunables of the core (all in ticks or counts). */
export interface CoreOptions {
  id: MemberId;
  members: readonly MemberId[];
  state: LoadedState;
  random: () => number;
  electionTicks: number;
  heartbeatTicks: number;
  maxBatch: number;
  maxBatchBytes: number;
  maxInflight: number;
  maxApply: number;
  preVote: boolean;
  checkQuorum: boolean;
}

/** What a `ready()` hands out; see `Ready` in `raft.ts`. */
export interface CoreReady {
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
  messages: AnyRaftMessage[];
  committedEntries: Entry[];
  readStates: ReadState[];
}

type Outgoing = AnyRaftMessage extends infer M
  ? M extends AnyRaftMessage ? Omit<M, "from" | "term"> & { term?: number } : never
  : never;

/** Shared mutable state of one member's Raft; the leader rules in `_raft_leader.ts` use it too. */
export class RaftCore {
  readonly id: MemberId;
  readonly opts: CoreOptions;
  readonly log: RaftLog;
  term: number;
  vote: MemberId | null;
  leader: MemberId | null = null;
  role: Role = "follower";
  members: MemberId[] = [];
  #configIndex = -1;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedTimeout = 0;
  votes = new Map<MemberId, boolean>();
  progress = new Map<MemberId, Progress>();
  leadTransferee: MemberId | null = null;
  reads: PendingRead[] = [];
  waitingReads: { requester: MemberId; context: string }[] = [];
  readRound = 0;
  messages: AnyRaftMessage[] = [];
  readStates: ReadState[] = [];
  #persisted: HardState;
  /** Leader hooks, installed by `_raft_leader.ts` to keep the import graph acyclic. */
  leaderHooks!: LeaderHooks;

  constructor(opts: CoreOptions) {
    this.id = opts.id;
    this.opts = opts;
    this.log = new RaftLog(opts.state, opts.members);
    this.term = opts.state.hardState.term;
    this.vote = opts.state.hardState.vote;
    this.#persisted = { ...opts.state.hardState };
    this.refreshConfig();
    this.resetTimeout();
  }

  /** Queues a message from this member. */
  send(message: Outgoing): void {
    this.messages.push(
      { ...message, from: this.id, term: message.term ?? this.term } as AnyRaftMessage,
    );
  }

  /** Whether this member may campaign: it is a voter. */
  get promotable(): boolean {
    return this.members.includes(this.id);
  }

  /** Recomputes the member list after the log changed (config entries act once appended). */
  refreshConfig(): void {
    const at = this.log.lastConfigIndex;
    if (at === this.#configIndex) return;
    this.#configIndex = at;
    this.members = this.log.membersAt(this.log.lastIndex);
    if (this.role === "leader") this.leaderHooks.onConfigChange();
  }

  resetTimeout(): void {
    const base = this.opts.electionTicks;
    // Two ticks past the lease that voters keep (`electionTicks` since they last heard from the
    // leader): followers' ticks are not in phase, and one that times out right at `base` would
    // find the others still inside their lease, be ignored, and wait a whole new timeout.
    this.randomizedTimeout = base + LEASE_MARGIN_TICKS + Math.floor(this.opts.random() * base);
  }

  #reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetTimeout();
    this.votes.clear();
    this.progress.clear();
    this.leadTransferee = null;
    this.reads = [];
    this.waitingReads = [];
  }

  becomeFollower(term: number, leader: MemberId | null): void {
    this.#reset(term);
    this.role = "follower";
    this.leader = leader;
  }

  /**
   * Starts an election: a pre-vote round first (when enabled), the real one once it is won, or a
   * real one at once after a leadership transfer (voters then ignore their leader lease).
   */
  campaign(kind: "prevote" | "election" | "transfer" = "prevote"): void {
    if (!this.promotable) return;
    const preVote = this.opts.preVote && kind === "prevote";
    const transfer = kind === "transfer";
    if (preVote) {
      this.#reset(this.term);
      this.role = "precandidate";
    } else {
      this.#reset(this.term + 1);
      this.role = "candidate";
      this.vote = this.id;
    }
    const term = preVote ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (this.#tally()) return;
    for (const to of this.members) {
      if (to === this.id) continue;
      this.send({
        type: preVote ? "prevote" : "vote",
        to,
        term,
        lastIndex: this.log.lastIndex,
        lastTerm: this.log.lastTerm,
        transfer,
      });
    }
  }

  /** Counts votes; returns true when the election is decided. */
  #tally(): boolean {
    let granted = 0;
    let rejected = 0;
    for (const [id, yes] of this.votes) {
      if (!this.members.includes(id)) continue;
      if (yes) granted++;
      else rejected++;
    }
    const need = quorum(this.members.length);
    if (granted >= need) {
      if (this.role === "precandidate") this.campaign("election");
      else this.leaderHooks.becomeLeader();
      return true;
    }
    if (rejected >= need) {
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  /** One tick of logical time. */
  tick(): void {
    if (this.role === "leader") {
      this.leaderHooks.tick();
      return;
    }
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedTimeout) {
      this.electionElapsed = 0;
      this.campaign();
    }
  }

  /** Handles a message from a peer. */
  step(m: AnyRaftMessage): void {
    if (m.term > this.term) {
      if (m.type === "prevote" || m.type === "vote") {
        const inLease = this.opts.checkQuorum && this.leader !== null &&
          this.electionElapsed < this.opts.electionTicks;
        if (inLease && !m.transfer) return;
      }
      if (m.type === "prevote" || (m.type === "prevote_resp" && !m.reject)) {
        // A pre-vote never changes our term, nor does a granted answer to ours.
      } else {
        const fromLeader = m.type === "append" || m.type === "heartbeat" || m.type === "snapshot";
        this.becomeFollower(m.term, fromLeader ? m.from : null);
      }
    } else if (m.term < this.term) {
      if (
        (this.opts.checkQuorum || this.opts.preVote) &&
        (m.type === "append" || m.type === "heartbeat")
      ) {
        // Tell a stale leader about our term so that it steps down.
        this.send({
          type: "append_resp",
          to: m.from,
          reject: false,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
        });
      } else if (m.type === "prevote") {
        this.send({ type: "prevote_resp", to: m.from, reject: true });
      }
      return;
    }
    switch (m.type) {
      case "prevote":
      case "vote":
        return this.#handleVote(m);
      case "prevote_resp":
      case "vote_resp":
        return this.#handleVoteResponse(m);
      case "append":
      case "heartbeat":
      case "snapshot":
        if (this.role === "leader") return; // Same term, another leader: impossible.
        if (this.role !== "follower") this.becomeFollower(this.term, m.from);
        this.leader = m.from;
        this.electionElapsed = 0;
        if (m.type === "append") return this.#handleAppend(m);
        if (m.type === "heartbeat") return this.#handleHeartbeat(m);
        return this.#handleSnapshot(m);
      case "timeout_now":
        return this.campaign("transfer");
      case "read_index_resp":
        this.readStates.push({ context: m.context, index: m.index });
        return;
      default:
        if (this.role === "leader") this.leaderHooks.step(m);
    }
  }

  #handleVote(m: VoteMessage): void {
    const canVote = this.vote === m.from || (this.vote === null && this.leader === null) ||
      (m.type === "prevote" && m.term > this.term);
    const type = m.type === "vote" ? "vote_resp" : "prevote_resp";
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ type, to: m.from, term: m.term, reject: false });
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type, to: m.from, reject: true });
    }
  }

  #handleVoteResponse(m: VoteResponse): void {
    const expected = this.role === "precandidate" ? "prevote_resp" : "vote_resp";
    if (m.type !== expected || (this.role !== "precandidate" && this.role !== "candidate")) return;
    this.votes.set(m.from, !m.reject);
    this.#tally();
  }

  #handleAppend(m: AppendMessage): void {
    if (m.prevIndex < this.log.committed) {
      this.#ack(m.from, this.log.committed);
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.entries);
    if (lastNew >= 0) {
      this.refreshConfig();
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.#ack(m.from, lastNew);
    } else {
      const hint = this.log.conflictHint(m.prevIndex);
      this.send({ type: "append_resp", to: m.from, reject: true, index: m.prevIndex, ...hint });
    }
  }

  #ack(to: MemberId, index: number): void {
    this.send({ type: "append_resp", to, reject: false, index, hintIndex: 0, hintTerm: 0 });
  }

  #handleHeartbeat(m: HeartbeatMessage): void {
    this.log.commitTo(m.commit);
    this.send({ type: "heartbeat_resp", to: m.from, context: m.context });
  }

  #handleSnapshot(m: SnapshotMessage): void {
    const { index, term } = m.snapshot.meta;
    if (index <= this.log.committed) {
      this.#ack(m.from, this.log.committed);
    } else if (this.log.matchTerm(index, term)) {
      this.log.commitTo(index);
      this.#ack(m.from, index);
    } else {
      this.log.restore(m.snapshot);
      this.refreshConfig();
      this.#ack(m.from, this.log.lastIndex);
    }
  }

  /** Term, vote and commit as they are now. */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Whether `ready()` would hand out anything. */
  hasReady(): boolean {
    if (this.role === "leader") this.leaderHooks.flush();
    const hs = this.hardState();
    return this.messages.length > 0 || this.readStates.length > 0 || this.log.hasPending ||
      hs.term !== this.#persisted.term || hs.vote !== this.#persisted.vote ||
      hs.commit !== this.#persisted.commit;
  }

  /** Hands out everything pending; see `Raft.ready()`. */
  ready(): CoreReady {
    if (this.role === "leader") this.leaderHooks.flush();
    const hs = this.hardState();
    const changed = hs.term !== this.#persisted.term || hs.vote !== this.#persisted.vote ||
      hs.commit !== this.#persisted.commit;
    this.#persisted = hs;
    const rd: CoreReady = {
      hardState: changed ? hs : null,
      snapshot: this.log.takeSnapshot(),
      entries: this.log.takeUnstable(),
      messages: this.messages,
      committedEntries: this.log.takeCommitted(this.opts.maxApply),
      readStates: this.readStates,
    };
    this.messages = [];
    this.readStates = [];
    return rd;
  }

  /** Records that a ready was persisted and applied. */
  advance(rd: CoreReady): void {
    if (rd.snapshot) this.log.stableTo(rd.snapshot.meta.index);
    const last = rd.entries.at(-1);
    if (last) this.log.stableTo(last.index);
    if (this.role === "leader") this.leaderHooks.maybeCommit();
  }
}

/** The leader-side rules, implemented in `_raft_leader.ts`. */
export interface LeaderHooks {
  becomeLeader(): void;
  tick(): void;
  step(m: AnyRaftMessage): void;
  flush(): void;
  maybeCommit(): boolean;
  onConfigChange(): void;
}
