/**
 * A pure Raft state machine (Ongaro & Ousterhout), in the style of etcd's `raft` package: no I/O,
 * no timers, no clock, no randomness of its own. The driver calls {@linkcode Raft.tick} on a timer,
 * hands it messages with {@linkcode Raft.step}, proposes with {@linkcode Raft.propose}, and loops
 * over {@linkcode Raft.ready} / {@linkcode Raft.advance}: persist the hard state, entries and
 * snapshot, then send the messages, then apply the committed entries.
 *
 * Features: elections with pre-vote, check-quorum, log replication with fast conflict
 * backtracking and pipelining, commit only of current-term entries (a noop starts each term),
 * leadership transfer, membership change one server at a time (a config entry takes effect when
 * appended), ReadIndex reads, InstallSnapshot, and batching of proposals into one append.
 *
 * @module
 */
import { type CoreReady, RaftCore, type ReadState } from "./_raft_core.ts";
import { encodeMembers } from "./_raft_log.ts";
import { installLeader, requestRead } from "./_raft_leader.ts";
import type { AnyRaftMessage, RaftMessageType } from "./_raft_messages.ts";
import {
  type Entry,
  type EntryType,
  type HardState,
  type LoadedState,
  type MemberId,
  NotLeaderError,
  type RaftMessage,
  type Role,
  type Snapshot,
} from "./types.ts";

export type { ReadState } from "./_raft_core.ts";
export { decodeMembers, encodeMembers } from "./_raft_log.ts";
export type * from "./_raft_messages.ts";

/** What the driver must do next, in order: persist, send, apply. */
export interface Ready {
  /** Term, vote and commit to persist, when changed. */
  hardState: HardState | null;
  /** Entries to append to storage (the first may overwrite a conflicting suffix). */
  entries: Entry[];
  /** A snapshot received from the leader: save it and restore the state machine from it. */
  snapshot: Snapshot | null;
  /** Messages to send once the above is durable. */
  messages: RaftMessage[];
  /** Entries to apply, in order, after the snapshot. */
  committedEntries: Entry[];
  /** Reads that may be served once the state machine has applied `index`. */
  readStates: ReadState[];
}

/** Options of {@linkcode Raft}. */
export interface RaftOptions {
  /** This member. */
  id: MemberId;
  /** Voting members when the log holds no config entry and no snapshot. */
  members: readonly MemberId[];
  /** What storage held at start. @default {an empty log} */
  state?: LoadedState;
  /** Uniform numbers in [0, 1) for election timeouts. */
  random: () => number;
  /** Election timeout in ticks; the actual one is random in [n, 2n). @default {10} */
  electionTicks?: number;
  /** Heartbeat interval in ticks. @default {1} */
  heartbeatTicks?: number;
  /** Most entries in one append message. @default {1024} */
  maxBatch?: number;
  /** Most payload bytes in one append message (at least one entry is sent). @default {1048576} */
  maxBatchBytes?: number;
  /** Most append messages in flight to one follower. @default {64} */
  maxInflight?: number;
  /** Most committed entries handed out by one ready. @default {4096} */
  maxApply?: number;
  /** Run a pre-vote round before each election. @default {true} */
  preVote?: boolean;
  /** A leader that hears from no quorum within an election timeout steps down. @default {true} */
  checkQuorum?: boolean;
}

const MESSAGE_TYPES: ReadonlySet<string> = new Set<RaftMessageType>([
  "prevote",
  "prevote_resp",
  "vote",
  "vote_resp",
  "append",
  "append_resp",
  "heartbeat",
  "heartbeat_resp",
  "snapshot",
  "timeout_now",
  "read_index",
  "read_index_resp",
]);

const EMPTY_STATE: LoadedState = {
  hardState: { term: 0, vote: null, commit: 0 },
  snapshot: null,
  entries: [],
};

/**
 * One member's Raft.
 *
 * @example Electing the only member of a cluster
 * ```ts
 * import { Raft } from "@cell/consensus/raft";
 * import assert from "node:assert/strict";
 *
 * const raft = new Raft({ id: "n1", members: ["n1"], random: () => 0 });
 * raft.campaign();
 * const rd = raft.ready(); // persist rd.hardState and rd.entries (the noop), then:
 * raft.advance(rd);
 * assert.equal(raft.role, "leader");
 * assert.equal(raft.ready().committedEntries.length, 1);
 * ```
 */
export class Raft {
  #core: RaftCore;

  /** Creates a member from what its storage holds. */
  constructor(options: RaftOptions) {
    const electionTicks = options.electionTicks ?? 10;
    const heartbeatTicks = options.heartbeatTicks ?? 1;
    if (!(heartbeatTicks >= 1 && electionTicks > heartbeatTicks)) {
      throw new RangeError(
        `Election ticks ${electionTicks} must exceed heartbeat ticks ${heartbeatTicks} (≥ 1)`,
      );
    }
    this.#core = new RaftCore({
      id: options.id,
      members: options.members,
      state: options.state ?? EMPTY_STATE,
      random: options.random,
      electionTicks,
      heartbeatTicks,
      maxBatch: Math.max(1, options.maxBatch ?? 1024),
      maxBatchBytes: options.maxBatchBytes ?? 1 << 20,
      maxInflight: Math.max(1, options.maxInflight ?? 64),
      maxApply: Math.max(1, options.maxApply ?? 4096),
      preVote: options.preVote ?? true,
      checkQuorum: options.checkQuorum ?? true,
    });
    installLeader(this.#core);
  }

  /** This member. */
  get id(): MemberId {
    return this.#core.id;
  }
  /** Current role. */
  get role(): Role {
    return this.#core.role;
  }
  /** Current term. */
  get term(): number {
    return this.#core.term;
  }
  /** Known leader, or `null`. */
  get leader(): MemberId | null {
    return this.#core.leader;
  }
  /** Highest committed index. */
  get commitIndex(): number {
    return this.#core.log.committed;
  }
  /** Highest index handed out for application. */
  get appliedIndex(): number {
    return this.#core.log.applied;
  }
  /** Index of the last entry. */
  get lastIndex(): number {
    return this.#core.log.lastIndex;
  }
  /** Voting members (config entries take effect once appended). */
  get members(): MemberId[] {
    return [...this.#core.members];
  }
  /** The member leadership is being handed to, or `null`. */
  get transferee(): MemberId | null {
    return this.#core.leadTransferee;
  }

  /** Term of the entry at `index`, or `undefined` when compacted or absent. */
  termAt(index: number): number | undefined {
    return this.#core.log.term(index);
  }

  /** On the leader: how far each follower's match index lags the last index. Else `{}`. */
  lag(): Record<MemberId, number> {
    const out: Record<MemberId, number> = {};
    if (this.#core.role !== "leader") return out;
    for (const [id, pr] of this.#core.progress) out[id] = this.lastIndex - pr.match;
    return out;
  }

  /** Advances logical time by one tick. */
  tick(): void {
    this.#core.tick();
  }

  /** Starts an election now (with a pre-vote round when enabled). */
  campaign(): void {
    if (this.#core.role !== "leader") this.#core.campaign();
  }

  /** Hands a message from a peer to this member. Unknown or misaddressed messages are ignored. */
  step(message: RaftMessage): void {
    if (message.to !== this.#core.id || !MESSAGE_TYPES.has(message.type)) return;
    if (message.from === this.#core.id) return;
    this.#core.step(message as AnyRaftMessage);
  }

  /**
   * Appends entries to the leader's log; returns the index and term each got. Throws
   * {@linkcode NotLeaderError} on a follower or during a leadership transfer.
   */
  propose(
    payloads: readonly Uint8Array[],
    type: EntryType = "normal",
  ): { index: number; term: number }[] {
    const core = this.#core;
    if (core.role !== "leader" || core.leadTransferee !== null) {
      throw new NotLeaderError(
        core.leadTransferee ?? (core.role === "leader" ? null : core.leader),
      );
    }
    let index = core.log.lastIndex;
    const entries = payloads.map((data) => ({ index: ++index, term: core.term, type, data }));
    core.log.append(entries);
    core.refreshConfig();
    return entries.map((e) => ({ index: e.index, term: e.term }));
  }

  /**
   * Proposes the member list `members`, which must differ from the current one by exactly one
   * member. Throws {@linkcode NotLeaderError} on a follower and `Error` while a change is pending.
   */
  proposeMembers(members: readonly MemberId[]): { index: number; term: number } {
    const core = this.#core;
    if (core.role !== "leader") throw new NotLeaderError(core.leader);
    const added = members.filter((m) => !core.members.includes(m));
    const removed = core.members.filter((m) => !members.includes(m));
    if (added.length + removed.length !== 1 || new Set(members).size !== members.length) {
      throw new RangeError(
        `Members ${JSON.stringify(members)} must differ from ${
          JSON.stringify(core.members)
        } by one`,
      );
    }
    if (
      core.log.lastConfigIndex > core.log.committed ||
      core.log.term(core.log.committed) !== core.term
    ) {
      throw new Error("A membership change is in progress: retry once it is committed");
    }
    return this.propose([encodeMembers(members)], "config")[0]!;
  }

  /**
   * Asks for a linearizable read index under `context`; a matching {@linkcode ReadState} comes out
   * of a later ready. On a follower the leader is asked. Throws {@linkcode NotLeaderError} when no
   * leader is known. Rounds lost to a leader change never complete: time them out.
   */
  readIndex(context: string): void {
    const core = this.#core;
    if (core.role === "leader") return requestRead(core, core.id, context);
    if (core.leader === null) throw new NotLeaderError(null);
    core.send({ type: "read_index", to: core.leader, context });
  }

  /** Hands leadership to `to` (leader only): catches it up, then tells it to campaign. */
  transferLeadership(to: MemberId): void {
    const core = this.#core;
    if (core.role !== "leader") throw new NotLeaderError(core.leader);
    if (to === core.id) return;
    const pr = core.progress.get(to);
    if (!pr || !core.members.includes(to)) {
      throw new RangeError(`Cannot transfer leadership to "${to}": not a voting member`);
    }
    core.leadTransferee = to;
    core.electionElapsed = 0;
    if (pr.match === core.log.lastIndex) core.send({ type: "timeout_now", to });
  }

  /** Whether {@linkcode Raft.ready} has anything to hand out. */
  hasReady(): boolean {
    return this.#core.hasReady();
  }

  /** Hands out what to persist, send and apply; call {@linkcode Raft.advance} once done. */
  ready(): Ready {
    return this.#core.ready();
  }

  /** Records that a ready's entries and snapshot are durable and its entries applied. */
  advance(ready: Ready): void {
    this.#core.advance(ready as CoreReady);
  }

  /**
   * Records a snapshot of the state machine at applied index `index` and drops the entries it
   * covers from memory. Returns the snapshot, to save with `LogStorage.saveSnapshot`.
   */
  compact(index: number, data: Uint8Array): Snapshot {
    const log = this.#core.log;
    const term = log.term(index);
    if (term === undefined || index > log.applied) {
      throw new RangeError(`Cannot snapshot at ${index}: applied is ${log.applied}`);
    }
    const snapshot = { meta: { index, term, members: log.membersAt(index) }, data };
    log.compact(snapshot);
    return snapshot;
  }
}
