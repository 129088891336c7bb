/**
 * The consensus cell's service definition: what clients call (`write`, `delete`, `cas`, `read`,
 * `status`, membership and leadership) and what members call on each other (`raft`).
 *
 * Wire messages use snake_case fields, like every other Cell service, so that clients in any
 * language read them alike. A string field that may be absent stands for "no value": a `cas`
 * without `expected` succeeds only when the key is absent, one without `value` deletes it.
 *
 * A member that is not the leader answers `write`, `delete`, `cas`, membership and leadership
 * calls (and linearizable reads, if it cannot serve them) with a {@linkcode CellError} whose
 * `details` is a {@linkcode NotLeaderDetails}: `FAILED_PRECONDITION` when it knows the leader
 * (send the call there), `UNAVAILABLE` during an election (retry shortly).
 *
 * @module
 */
import {
  CellError,
  type Method,
  method,
  type Protein,
  protein,
  type Service,
  service,
  t,
} from "@cell/sdk";
import { NotLeaderError } from "./types.ts";

// Explicit types on every export (JSR's fast check), spelled through `t` so that this package
// needs no direct dependency on TypeBox.
type TString = ReturnType<typeof t.string>;
type TInteger = ReturnType<typeof t.u64>;
type TBoolean = ReturnType<typeof t.bool>;
type TOptionalString = ReturnType<typeof t.optional<TString>>;
type TStrings = ReturnType<typeof t.list<TString>>;
type TRole = ReturnType<typeof t.enum<["follower", "precandidate", "candidate", "leader"]>>;
type TLag = ReturnType<typeof t.map<TInteger>>;
type TAnyList = ReturnType<typeof t.list<ReturnType<typeof t.any>>>;
type TOptionalInteger = ReturnType<typeof t.optional<TInteger>>;
type TSession = { client: TOptionalString; seq: TOptionalInteger };

/**
 * The optional client session of a write: a command retried with the same `client` and `seq`
 * is applied once, the retry getting the first result. Each client id must number its commands
 * with growing `seq`s, one command at a time.
 */
const session = {
  /** A client session id, unique among clients. */
  client: t.optional(t.string()),
  /** The session's sequence number of this command. */
  seq: t.optional(t.u64()),
};

/** The cell's name, under which members serve and register. */
export const CONSENSUS_CELL = "consensus";

/** Sets `key` to `value`. */
export const WriteRequest: Protein<{ key: TString; value: TString } & TSession> = protein(
  "WriteRequest",
  {
    /** The key. */
    key: t.string(),
    /** Its new value. */
    value: t.string(),
    ...session,
  },
);

/** Removes `key`. */
export const DeleteRequest: Protein<{ key: TString } & TSession> = protein("DeleteRequest", {
  /** The key. */
  key: t.string(),
  ...session,
});

/** Sets `key` to `value` only if it currently holds `expected`. */
export const CasRequest: Protein<
  { key: TString; expected: TOptionalString; value: TOptionalString } & TSession
> = protein("CasRequest", {
  /** The key. */
  key: t.string(),
  /** The value the key must hold; absent: the key must be absent. */
  expected: t.optional(t.string()),
  /** The new value; absent: delete the key. */
  value: t.optional(t.string()),
  ...session,
});

/** What a write, delete or compare-and-set did. */
export const WriteResult: Protein<
  { ok: TBoolean; previous: TOptionalString; index: TInteger }
> = protein("WriteResult", {
  /** False only when a compare-and-set found another value (nothing was changed). */
  ok: t.bool(),
  /** The value before the command; absent when the key was absent. */
  previous: t.optional(t.string()),
  /** Log index of the command. */
  index: t.u64(),
});

/** Reads `key`. */
export const ReadRequest: Protein<
  { key: TString; stale: ReturnType<typeof t.optional<TBoolean>> }
> = protein("ReadRequest", {
  /** The key. */
  key: t.string(),
  /**
   * Answer from this member's state at once, without confirming leadership: fast, served by
   * any member, but possibly behind the latest writes.
   */
  stale: t.optional(t.bool()),
});

/** A value read. */
export const ReadResult: Protein<{ value: TOptionalString; index: TInteger }> = protein(
  "ReadResult",
  {
    /** The value; absent when the key is absent. */
    value: t.optional(t.string()),
    /** Applied log index the answer reflects. */
    index: t.u64(),
  },
);

/** No fields. */
export const Empty: Protein<Record<never, never>> = protein("Empty", {});

/** One member's view of the cluster. */
export const MemberStatus: Protein<{
  id: TString;
  role: TRole;
  term: TInteger;
  leader: TOptionalString;
  commit_index: TInteger;
  applied_index: TInteger;
  last_index: TInteger;
  members: TStrings;
  lag: TLag;
}> = protein("MemberStatus", {
  /** This member. */
  id: t.string(),
  /** Its current role. */
  role: t.enum("follower", "precandidate", "candidate", "leader"),
  /** Its current term. */
  term: t.u64(),
  /** The leader it knows; absent during an election. */
  leader: t.optional(t.string()),
  /** Highest committed log index. */
  commit_index: t.u64(),
  /** Highest applied log index. */
  applied_index: t.u64(),
  /** Last log index. */
  last_index: t.u64(),
  /** Voting members. */
  members: t.list(t.string()),
  /** On the leader: entries each follower lags behind; empty elsewhere. */
  lag: t.map(t.u64()),
});

/** The voting members. */
export const Members: Protein<{ members: TStrings; leader: TOptionalString }> = protein(
  "Members",
  {
    /** Voting member ids. */
    members: t.list(t.string()),
    /** The leader this member knows; absent during an election. */
    leader: t.optional(t.string()),
  },
);

/** A member to add, remove or hand leadership to. */
export const MemberRequest: Protein<{ id: TString }> = protein("MemberRequest", {
  /** The member id (its instance id, for example `consensus-3`). */
  id: t.string(),
});

/** Raft messages from one member to another, in the order they were sent. */
export const RaftBatch: Protein<{ messages: TAnyList }> = protein("RaftBatch", {
  /** The messages (see `RaftMessage`), each addressed to the receiving member. */
  messages: t.list(t.any()),
});

/** The consensus cell: a replicated key-value store kept consistent by Raft. */
export const Consensus: Service<{
  write: Method<typeof WriteRequest, typeof WriteResult>;
  delete: Method<typeof DeleteRequest, typeof WriteResult>;
  cas: Method<typeof CasRequest, typeof WriteResult>;
  read: Method<typeof ReadRequest, typeof ReadResult>;
  status: Method<typeof Empty, typeof MemberStatus>;
  members: Method<typeof Empty, typeof Members>;
  addMember: Method<typeof MemberRequest, typeof Members>;
  removeMember: Method<typeof MemberRequest, typeof Members>;
  transferLeader: Method<typeof MemberRequest, typeof Members>;
  raft: Method<typeof RaftBatch, typeof Empty>;
}> = service({
  /** Sets a key (leader only); answers once the write is committed and applied. */
  write: method(WriteRequest, WriteResult),
  /** Removes a key (leader only); answers once committed and applied. */
  delete: method(DeleteRequest, WriteResult),
  /** Compare-and-set (leader only); `ok` is false when the key held another value. */
  cas: method(CasRequest, WriteResult),
  /** Reads a key: linearizable unless `stale`. */
  read: method(ReadRequest, ReadResult, { idempotent: true }),
  /** Role, term, leader, log indexes, members and (on the leader) follower lag. */
  status: method(Empty, MemberStatus, { idempotent: true }),
  /** The voting members and the known leader. */
  members: method(Empty, Members, { idempotent: true }),
  /** Adds a voting member (leader only); answers once the change is committed. */
  addMember: method(MemberRequest, Members),
  /** Removes a voting member (leader only); answers once the change is committed. */
  removeMember: method(MemberRequest, Members),
  /** Hands leadership to a member (leader only); answers once it has taken over. */
  transferLeader: method(MemberRequest, Members),
  /** Internal: Raft messages between members. Fire and forget: lost messages are resent. */
  raft: method(RaftBatch, Empty),
});

/** The service's type, for clients that import only types. */
export type Consensus = typeof Consensus;

/** The machine-readable part of a "not the leader" error. */
export interface NotLeaderDetails {
  /** Always `"NOT_LEADER"`. */
  reason: "NOT_LEADER";
  /** The member that answered. */
  member: string;
  /** The leader it knows, or `null` during an election. */
  leader: string | null;
}

/**
 * The {@linkcode CellError} a member answers with when it is not the leader:
 * `FAILED_PRECONDITION` with the leader in `details.leader`, or `UNAVAILABLE` with
 * `details.leader` null while no leader is known.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notLeaderError, notLeaderOf } from "@cell/consensus";
 * const error = notLeaderError("n1", "n2");
 * assert.ok(error.code === "FAILED_PRECONDITION");
 * assert.ok(notLeaderOf(error)?.leader === "n2");
 * ```
 */
export function notLeaderError(member: string, leader: string | null): CellError {
  const details: NotLeaderDetails = { reason: "NOT_LEADER", member, leader };
  return leader === null
    ? new CellError(
      "UNAVAILABLE",
      `Member "${member}" knows no leader yet: retry once the election is over`,
      { details },
    )
    : new CellError(
      "FAILED_PRECONDITION",
      `Member "${member}" is not the leader: send the call to "${leader}"`,
      { details },
    );
}

/**
 * The leader hint of a "not the leader" error, or `undefined` for any other error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CellError } from "@cell/sdk";
 * import { notLeaderOf } from "@cell/consensus";
 * assert.ok(notLeaderOf(new CellError("INTERNAL", "boom")) === undefined);
 * ```
 */
export function notLeaderOf(error: unknown): NotLeaderDetails | undefined {
  if (!(error instanceof CellError)) return undefined;
  const d = error.details as Partial<NotLeaderDetails> | undefined;
  if (d?.reason !== "NOT_LEADER" || typeof d.member !== "string") return undefined;
  return { reason: "NOT_LEADER", member: d.member, leader: d.leader ?? null };
}

/** Turns what a member's node threw into the error a client receives. */
export function toCellError(member: string, error: unknown): CellError {
  if (error instanceof NotLeaderError) return notLeaderError(member, error.leader);
  return CellError.from(error);
}
