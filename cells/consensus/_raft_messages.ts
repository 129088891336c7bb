/**
 * The concrete Raft messages exchanged between members, and the helpers that build them.
 *
 * @module
 */
import type { Entry, MemberId, RaftMessage, Snapshot } from "./types.ts";

/** Every message kind the Raft core sends. */
export type RaftMessageType =
  | "prevote"
  | "prevote_resp"
  | "vote"
  | "vote_resp"
  | "append"
  | "append_resp"
  | "heartbeat"
  | "heartbeat_resp"
  | "snapshot"
  | "timeout_now"
  | "read_index"
  | "read_index_resp";

/** A (pre-)vote request. For `prevote`, `term` is the term the sender would campaign in. */
export interface VoteMessage extends RaftMessage {
  /** `prevote` or `vote`. */
  type: "prevote" | "vote";
  /** Index of the candidate's last entry. */
  lastIndex: number;
  /** Term of the candidate's last entry. */
  lastTerm: number;
  /** True when the campaign follows a leadership transfer: voters ignore their leader lease. */
  transfer: boolean;
}

/** Answer to a (pre-)vote request. */
export interface VoteResponse extends RaftMessage {
  /** `prevote_resp` or `vote_resp`. */
  type: "prevote_resp" | "vote_resp";
  /** True when the vote is refused. */
  reject: boolean;
}

/** AppendEntries: entries after (`prevIndex`, `prevTerm`), and the leader's commit index. */
export interface AppendMessage extends RaftMessage {
  /** Always `append`. */
  type: "append";
  /** Index of the entry just before `entries`. */
  prevIndex: number;
  /** Term of that entry. */
  prevTerm: number;
  /** The entries, possibly none. */
  entries: Entry[];
  /** Leader's commit index. */
  commit: number;
}

/**
 * Answer to an append or snapshot. On success `index` is the follower's new match index. On
 * rejection `index` is the rejected `prevIndex` and (`hintIndex`, `hintTerm`) let the leader skip a
 * whole conflicting term at once: `hintTerm` is the follower's term at `hintIndex`, the first index
 * of that term (or the follower's last index + 1 and term 0 when its log is too short).
 */
export interface AppendResponse extends RaftMessage {
  /** Always `append_resp`. */
  type: "append_resp";
  /** True when the entries did not match. */
  reject: boolean;
  /** Match index on success, the rejected `prevIndex` otherwise. */
  index: number;
  /** Where the leader should look next, on rejection. */
  hintIndex: number;
  /** The follower's term at `hintIndex`, or 0. */
  hintTerm: number;
}

/** A heartbeat: commit index (capped at the follower's match) and a ReadIndex round, if any. */
export interface HeartbeatMessage extends RaftMessage {
  /** Always `heartbeat`. */
  type: "heartbeat";
  /** Commit index the follower may adopt. */
  commit: number;
  /** The latest ReadIndex round the leader wants confirmed, or empty. */
  context: string;
}

/** Answer to a heartbeat, echoing its ReadIndex round. */
export interface HeartbeatResponse extends RaftMessage {
  /** Always `heartbeat_resp`. */
  type: "heartbeat_resp";
  /** The echoed round. */
  context: string;
}

/** InstallSnapshot, in one message. */
export interface SnapshotMessage extends RaftMessage {
  /** Always `snapshot`. */
  type: "snapshot";
  /** The snapshot. */
  snapshot: Snapshot;
}

/** Tells the transfer target to campaign at once. */
export interface TimeoutNowMessage extends RaftMessage {
  /** Always `timeout_now`. */
  type: "timeout_now";
}

/** A follower asks the leader for a read index on behalf of a local read. */
export interface ReadIndexMessage extends RaftMessage {
  /** Always `read_index`. */
  type: "read_index";
  /** The follower's request id, echoed back. */
  context: string;
}

/** The leader's answer: reads may be served once `index` is applied. */
export interface ReadIndexResponse extends RaftMessage {
  /** Always `read_index_resp`. */
  type: "read_index_resp";
  /** The follower's request id. */
  context: string;
  /** The read index (the leader's confirmed commit index). */
  index: number;
}

/** Any message of the Raft core. */
export type AnyRaftMessage =
  | VoteMessage
  | VoteResponse
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | SnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponse;

/** Fields common to all messages. */
export interface Envelope {
  /** Sender. */
  from: MemberId;
  /** Recipient. */
  to: MemberId;
  /** Sender's term. */
  term: number;
}
