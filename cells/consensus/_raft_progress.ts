/**
 * What a leader knows of each follower's log, and the quorum arithmetic.
 *
 * @module
 */
import type { MemberId } from "./types.ts";

/** How the leader currently replicates to a follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** A leader's view of one follower. */
export class Progress {
  /** Highest index known to match the leader's log. */
  match = 0;
  /** Next index to send. */
  next: number;
  /** Replication mode: probing one message at a time, pipelining, or waiting for a snapshot. */
  state: ProgressState = "probe";
  /** In probe mode: a message is out, wait for its answer or the next heartbeat. */
  paused = false;
  /** Send an append even when there is nothing new (to detect lost messages). */
  force = false;
  /** Last index of each append in flight, oldest first (replicate mode). */
  inflight: number[] = [];
  /** Snapshot index being installed (snapshot mode). */
  pendingSnapshot = 0;
  /** Ticks since the snapshot was sent, to resend it if lost. */
  snapshotTicks = 0;
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = false;
  /** Highest commit index sent to the follower. */
  commitSent = 0;

  constructor(next: number) {
    this.next = next;
  }

  /** Back to one-at-a-time probing from the match index. */
  becomeProbe(): void {
    this.state = "probe";
    this.next = this.match + 1;
    this.paused = false;
    this.inflight = [];
  }

  /** Pipelining from the match index. */
  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.paused = false;
    this.inflight = [];
  }

  /** Waiting for the follower to install snapshot `index`. */
  becomeSnapshot(index: number): void {
    this.state = "snapshot";
    this.pendingSnapshot = index;
    this.snapshotTicks = 0;
    this.inflight = [];
  }

  /** Records an acknowledged index; returns whether the match index moved. */
  update(index: number): boolean {
    this.paused = false;
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
    return true;
  }
}

/** Votes needed among `count` voters. */
export function quorum(count: number): number {
  return Math.floor(count / 2) + 1;
}

/** The highest index held by a quorum of `members`, given each member's match index. */
export function quorumIndex(members: readonly MemberId[], match: (id: MemberId) => number): number {
  if (members.length === 0) return 0;
  const sorted = members.map(match).sort((a, b) => b - a);
  return sorted[quorum(members.length) - 1]!;
}
