/**
 * Shared types of the consensus cell: log entries, the persistent Raft state and the storage
 * contract that the Raft core, the write-ahead log and the simulated disk all agree on.
 *
 * @module
 */

/** A member id: unique and stable for the life of a member (for example `"n1"`). */
export type MemberId = string;

/** What an entry carries. `noop` is the leader's first entry of a term; `config` a membership change. */
export type EntryType = "normal" | "config" | "noop";

/** One log entry. `data` is opaque to Raft: the key-value command, or the encoded member list. */
export interface Entry {
  /** Position in the log, from 1. */
  index: number;
  /** Term of the leader that created it. */
  term: number;
  /** What the entry carries. */
  type: EntryType;
  /** The payload. */
  data: Uint8Array;
}

/** The state Raft must persist before it answers a message (Figure 2 of the paper, plus commit). */
export interface HardState {
  /** Latest term this member has seen. */
  term: number;
  /** Candidate voted for in `term`, or `null`. */
  vote: MemberId | null;
  /** Highest index known committed (an optimisation: may lag after restart). */
  commit: number;
}

/** What a snapshot covers. */
export interface SnapshotMeta {
  /** Last log index included in the snapshot. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Voting members as of `index`. */
  members: MemberId[];
}

/** A state-machine snapshot. */
export interface Snapshot {
  /** What it covers. */
  meta: SnapshotMeta;
  /** The serialized state machine. */
  data: Uint8Array;
}

/** What a member finds on its disk when it starts. */
export interface LoadedState {
  /** Persisted term, vote and commit; zeroes on a fresh disk. */
  hardState: HardState;
  /** Latest durable snapshot, if any. */
  snapshot: Snapshot | null;
  /** Durable entries after the snapshot, contiguous, in index order. */
  entries: Entry[];
}

/**
 * Durable storage of one member. Writes are buffered until {@linkcode LogStorage.sync} resolves;
 * a crash may lose anything not yet synced, but never anything synced (and a torn tail is dropped
 * on load, never a synced record).
 */
export interface LogStorage {
  /** Reads what survived. Called once, before any write. */
  load(): Promise<LoadedState>;
  /**
   * Appends entries. If `entries[0].index` is at or below the last stored index, the stored
   * entries from that index on are dropped first (a follower overwriting a conflicting suffix).
   */
  append(entries: Entry[]): void;
  /** Records term, vote and commit. */
  setHardState(state: HardState): void;
  /** Makes every earlier `append` and `setHardState` durable. */
  sync(): Promise<void>;
  /** Durably stores a snapshot and drops the entries it covers. */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** Releases files. */
  close(): Promise<void>;
}

/** A key-value command, as proposed through Raft and applied by every member. */
export type KvCommand =
  & (
    | { op: "put"; key: string; value: string }
    | { op: "delete"; key: string }
    | { op: "cas"; key: string; expected: string | null; value: string | null }
  )
  & KvSession;

/**
 * Optional client session of a command: a retried command (same `client`, same `seq`) is applied
 * once, and the retry gets the first result. `seq` must grow with each new command of a client.
 */
export interface KvSession {
  /** A client id, unique among clients. */
  client?: string;
  /** The client's sequence number for this command. */
  seq?: number;
}

/** What applying a command returned. `ok` is false only for a failed compare-and-set. */
export interface KvResult {
  /** False when a compare-and-set found another value. */
  ok: boolean;
  /** The value before the command (`null` when absent). */
  previous: string | null;
  /** Index of the entry that carried the command. */
  index: number;
}

/** Role of a member. */
export type Role = "follower" | "precandidate" | "candidate" | "leader";

/** What `status()` reports. */
export interface NodeStatus {
  /** This member. */
  id: MemberId;
  /** Current role. */
  role: Role;
  /** Current term. */
  term: number;
  /** Known leader, or `null`. */
  leader: MemberId | null;
  /** Highest committed index. */
  commitIndex: number;
  /** Highest applied index. */
  appliedIndex: number;
  /** Last log index. */
  lastIndex: number;
  /** Voting members. */
  members: MemberId[];
  /** On the leader: how many entries each follower's match index lags the leader's last index. */
  lag: Record<MemberId, number>;
}

/** Time as the driver sees it: real timers in production, a virtual clock in the simulation. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs `fn` after `ms`; returns a handle for {@linkcode Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): number;
  /** Cancels a pending {@linkcode Clock.setTimeout}. */
  clearTimeout(handle: number): void;
}

/** Thrown by a member that is not the leader. `leader` is the hint clients redirect to. */
export class NotLeaderError extends Error {
  /** The leader this member knows of, or `null` during an election. */
  readonly leader: MemberId | null;
  /** Creates the error. */
  constructor(leader: MemberId | null) {
    super(
      leader === null
        ? "No leader is known yet: retry after the election"
        : `Not the leader: send writes to "${leader}"`,
    );
    this.name = "NotLeaderError";
    this.leader = leader;
  }
}

/**
 * One running consensus member: Raft, its storage and the key-value state machine, driven by a
 * {@linkcode Clock}. The same code runs in the simulation and in the real cell; only storage, clock
 * and `send` differ.
 */
export interface ConsensusNode {
  /** Hands a message from a peer to this member. */
  receive(message: RaftMessage): void;
  /** Proposes a command (leader only; else rejects with {@linkcode NotLeaderError}); resolves once applied. */
  write(command: KvCommand): Promise<KvResult>;
  /**
   * Reads a key. Linearizable by default (ReadIndex: confirmed leadership, then waits until applied);
   * `stale: true` answers from local state at once, on any member.
   */
  read(
    key: string,
    options?: { stale?: boolean },
  ): Promise<{ value: string | null; index: number }>;
  /** Term, leader, indexes, members and lag. */
  status(): NodeStatus;
  /** Adds a voting member (one at a time; leader only). Resolves once the change is committed. */
  addMember(id: MemberId): Promise<void>;
  /** Removes a voting member (one at a time; leader only). */
  removeMember(id: MemberId): Promise<void>;
  /** Hands leadership to `id` (leader only). Resolves when `id` has taken over or rejects on timeout. */
  transferLeadership(id: MemberId): Promise<void>;
  /** Stops timers, fails pending calls with an error, and closes storage. */
  stop(): Promise<void>;
}

/**
 * A Raft message between members. A plain object of numbers, strings, arrays and Uint8Arrays, so it
 * travels through MessagePack unchanged. The variants are defined by the Raft core.
 */
export interface RaftMessage {
  /** Message kind (vote, append, snapshot, ...). */
  type: string;
  /** Sender. */
  from: MemberId;
  /** Recipient. */
  to: MemberId;
  /** Sender's term. */
  term: number;
  /** Kind-specific fields. */
  [field: string]: unknown;
}

/** What {@linkcode ConsensusNode} needs to run. */
export interface NodeOptions {
  /** This member. */
  id: MemberId;
  /** Initial voting members (including `id`) when the disk is fresh; ignored once a config is stored. */
  members: MemberId[];
  /** Durable storage. */
  storage: LogStorage;
  /** Delivers a message to a peer; may drop it silently (Raft retries). */
  send(message: RaftMessage): void;
  /** Timers. */
  clock: Clock;
  /** Seeded randomness for election timeouts: returns a float in [0, 1). */
  random(): number;
  /** Heartbeat interval. @default {50} */
  heartbeatMs?: number;
  /** Base election timeout; the actual one is random in [base, 2 × base), plus two ticks. @default {400} */
  electionTimeoutMs?: number;
  /** Take a snapshot after this many applied entries since the last one. @default {10000} */
  snapshotEvery?: number;
  /** Largest number of entries (or bytes, whichever first) in one append message. @default {1024} */
  maxBatch?: number;
  /** How often Raft's logical clock ticks; timeouts are rounded to whole ticks. @default {heartbeatMs / 5} */
  tickMs?: number;
}
