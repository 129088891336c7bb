/**
 * The driver of one consensus member: runs the pure Raft core over a {@linkcode LogStorage}, a
 * {@linkcode Clock} and a `send` function, and applies committed commands to the key-value map.
 *
 * Each round persists one ready (entries and hard state, then one `sync()` for all of them: every
 * proposal that arrived meanwhile shares it), then sends the ready's messages, then applies.
 *
 * @module
 */
import { CellError } from "@cell/sdk";
import { decodeCommand, encodeCommand, KvStore } from "./kv.ts";
import { Raft, type Ready } from "./raft.ts";
import {
  type ConsensusNode,
  type Entry,
  type KvCommand,
  type KvResult,
  type MemberId,
  type NodeOptions,
  type NodeStatus,
  NotLeaderError,
  type RaftMessage,
} from "./types.ts";

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

interface PendingWrite extends Waiter<KvResult> {
  term: number;
}

interface PendingRead extends Waiter<{ value: string | null; index: number }> {
  key: string;
  /** The confirmed read index, once known. */
  index: number;
}

/** Deliberate defects, for proving that the simulation catches them. Never set in production. */
export interface NodeFaults {
  /** Serve linearizable reads from local state, without ReadIndex. */
  staleReads?: boolean;
  /** Send messages (votes, acknowledgements) before the ready is durable. */
  sendBeforeSync?: boolean;
}

/** Observers of what a member applies, for the simulation's invariant checks. */
export interface NodeHooks {
  /** Called for each applied entry, with the command's result (`null` for noop and config). */
  applied?(entry: Entry, result: KvResult | null): void;
  /** Called with each snapshot this member takes of its state machine. */
  snapshotted?(index: number, data: Uint8Array): void;
}

/** {@linkcode NodeOptions} plus testing hooks. */
export interface NodeTestOptions extends NodeOptions {
  /** Deliberate defects. */
  faults?: NodeFaults;
  /** Observers. */
  hooks?: NodeHooks;
}

/**
 * Starts a member: loads its storage, then runs Raft on `options.clock`.
 *
 * @example A one-member cluster
 * ```ts
 * import { createNode } from "@cell/consensus/node";
 * import { MemoryStorage } from "@cell/consensus/memory_storage";
 * import assert from "node:assert/strict";
 *
 * const node = await createNode({
 *   id: "n1",
 *   members: ["n1"],
 *   storage: new MemoryStorage(),
 *   send: () => {},
 *   clock: {
 *     now: () => performance.now(),
 *     setTimeout: (fn, ms) => Number(setTimeout(fn, ms)),
 *     clearTimeout: (handle) => clearTimeout(handle),
 *   },
 *   random: Math.random,
 *   heartbeatMs: 5,
 *   electionTimeoutMs: 20,
 * });
 * while (node.status().role !== "leader") await new Promise((r) => setTimeout(r, 5));
 * await node.write({ op: "put", key: "a", value: "1" });
 * assert.equal((await node.read("a")).value, "1");
 * await node.stop();
 * ```
 */
export async function createNode(
  options: NodeTestOptions,
): Promise<ConsensusNode> {
  const state = await options.storage.load();
  return new Member(options, state);
}

class Member implements ConsensusNode {
  #opts: NodeTestOptions;
  #raft: Raft;
  #kv = new KvStore();
  #tickMs: number;
  #timer = -1;
  /** When the next tick is due on the clock; -1 before the first. */
  #tickAt = -1;
  /** Most missed ticks made up by one timer. */
  #catchUpTicks: number;
  #running = false;
  #stopped = false;
  #writes = new Map<number, PendingWrite>();
  #configs = new Map<number, Waiter<void> & { term: number }>();
  #reads = new Map<string, PendingRead>();
  #transfer: (Waiter<void> & { to: MemberId; term: number; timer: number }) | null = null;
  #readSeq = 0;
  #nonce: string;
  #snapshotIndex: number;
  #seen: string;
  #persistedTermVote = "";

  constructor(
    opts: NodeTestOptions,
    state: Awaited<ReturnType<NodeOptions["storage"]["load"]>>,
  ) {
    this.#opts = opts;
    const heartbeatMs = opts.heartbeatMs ?? 50;
    const electionMs = opts.electionTimeoutMs ?? 400;
    this.#tickMs = opts.tickMs ?? Math.max(1, heartbeatMs / 5);
    const heartbeatTicks = Math.max(1, Math.round(heartbeatMs / this.#tickMs));
    this.#catchUpTicks = heartbeatTicks;
    this.#raft = new Raft({
      id: opts.id,
      members: opts.members,
      state,
      random: opts.random,
      heartbeatTicks,
      electionTicks: Math.max(heartbeatTicks + 1, Math.round(electionMs / this.#tickMs)),
      maxBatch: opts.maxBatch,
    });
    if (state.snapshot) this.#kv.restore(state.snapshot.data);
    this.#snapshotIndex = state.snapshot?.meta.index ?? 0;
    this.#nonce = Math.floor(opts.random() * 2 ** 32).toString(36);
    this.#seen = this.#observed();
    if (opts.members.length === 1 && opts.members[0] === opts.id) this.#raft.campaign();
    this.#armTick();
    this.#kick();
  }

  receive(message: RaftMessage): void {
    if (this.#stopped) return;
    this.#raft.step(message);
    this.#changed();
  }

  write(command: KvCommand): Promise<KvResult> {
    if (this.#stopped) return Promise.reject(stoppedError());
    let at: { index: number; term: number };
    try {
      at = this.#raft.propose([encodeCommand(command)])[0]!;
    } catch (error) {
      return Promise.reject(error);
    }
    this.#kick();
    return new Promise((resolve, reject) =>
      this.#writes.set(at.index, { term: at.term, resolve, reject })
    );
  }

  read(
    key: string,
    options: { stale?: boolean } = {},
  ): Promise<{ value: string | null; index: number }> {
    if (this.#stopped) return Promise.reject(stoppedError());
    if (options.stale || this.#opts.faults?.staleReads) {
      return Promise.resolve({ value: this.#kv.get(key), index: this.#kv.appliedIndex });
    }
    const context = `${this.#opts.id}:${this.#nonce}:${++this.#readSeq}`;
    try {
      this.#raft.readIndex(context);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#kick();
    return new Promise((resolve, reject) =>
      this.#reads.set(context, { key, index: -1, resolve, reject })
    );
  }

  status(): NodeStatus {
    const raft = this.#raft;
    return {
      id: this.#opts.id,
      role: raft.role,
      term: raft.term,
      leader: raft.leader,
      commitIndex: raft.commitIndex,
      appliedIndex: this.#kv.appliedIndex,
      lastIndex: raft.lastIndex,
      members: raft.members,
      lag: raft.lag(),
    };
  }

  addMember(id: MemberId): Promise<void> {
    const members = this.#raft.members;
    return members.includes(id) ? Promise.resolve() : this.#changeMembers([...members, id]);
  }

  removeMember(id: MemberId): Promise<void> {
    const members = this.#raft.members;
    return members.includes(id)
      ? this.#changeMembers(members.filter((m) => m !== id))
      : Promise.resolve();
  }

  #changeMembers(members: MemberId[]): Promise<void> {
    if (this.#stopped) return Promise.reject(stoppedError());
    let at: { index: number; term: number };
    try {
      at = this.#raft.proposeMembers(members);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#kick();
    return new Promise((resolve, reject) =>
      this.#configs.set(at.index, { term: at.term, resolve, reject })
    );
  }

  transferLeadership(id: MemberId): Promise<void> {
    if (this.#stopped) return Promise.reject(stoppedError());
    if (this.#transfer) {
      return Promise.reject(
        new CellError("ABORTED", "A leadership transfer is in progress: wait for it"),
      );
    }
    try {
      this.#raft.transferLeadership(id);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#raft.transferee === null) return Promise.resolve();
    this.#kick();
    return new Promise((resolve, reject) => {
      const timeoutMs = 2 * (this.#opts.electionTimeoutMs ?? 400);
      const timer = this.#opts.clock.setTimeout(() => {
        this.#transfer = null;
        reject(
          new CellError(
            "DEADLINE_EXCEEDED",
            `Leadership did not move to "${id}" within ${timeoutMs} ms: retry`,
          ),
        );
      }, timeoutMs);
      this.#transfer = { to: id, term: this.#raft.term, timer, resolve, reject };
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#opts.clock.clearTimeout(this.#timer);
    const error = stoppedError();
    for (const w of this.#writes.values()) w.reject(error);
    for (const w of this.#configs.values()) w.reject(error);
    for (const r of this.#reads.values()) r.reject(error);
    this.#writes.clear();
    this.#configs.clear();
    this.#reads.clear();
    if (this.#transfer) {
      this.#opts.clock.clearTimeout(this.#transfer.timer);
      this.#transfer.reject(error);
      this.#transfer = null;
    }
    await this.#opts.storage.close();
  }

  // Ticks keep to the clock: re-arming after each late timer made every tick
  // tickMs plus the timer's lateness, and election timeouts 20-30% longer under load.
  #armTick(): void {
    this.#tickAt = (this.#tickAt < 0 ? this.#opts.clock.now() : this.#tickAt) + this.#tickMs;
    const delay = Math.max(0, this.#tickAt - this.#opts.clock.now());
    this.#timer = this.#opts.clock.setTimeout(() => {
      if (this.#stopped) return;
      // Ticks missed by a late timer are made up, up to a heartbeat's worth: a longer stall is
      // not made up at once, so that a leader gets to hear from its followers before its
      // quorum check.
      const late = Math.floor((this.#opts.clock.now() - this.#tickAt) / this.#tickMs);
      const ticks = 1 + Math.min(Math.max(0, late), this.#catchUpTicks);
      this.#tickAt += (ticks - 1) * this.#tickMs;
      if (late > ticks - 1) this.#tickAt = this.#opts.clock.now();
      for (let i = 0; i < ticks; i++) this.#raft.tick();
      this.#changed();
      this.#armTick();
    }, delay);
  }

  #observed(): string {
    return `${this.#raft.term}/${this.#raft.leader}`;
  }

  /** After a step or tick: notices leader changes, then runs the ready loop. */
  #changed(): void {
    const seen = this.#observed();
    if (seen !== this.#seen) {
      this.#seen = seen;
      // Reads without a confirmed index will never get one from the old leader.
      for (const [context, read] of this.#reads) {
        if (read.index >= 0) continue;
        this.#reads.delete(context);
        read.reject(new NotLeaderError(this.#raft.leader));
      }
      const t = this.#transfer;
      if (t && this.#raft.leader === t.to && this.#raft.term > t.term) {
        this.#opts.clock.clearTimeout(t.timer);
        this.#transfer = null;
        t.resolve();
      }
    }
    this.#kick();
  }

  /** Runs the ready loop soon, so that calls made in the same turn share one round. */
  #kick(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    queueMicrotask(() => this.#loop());
  }

  async #loop(): Promise<void> {
    try {
      while (!this.#stopped && this.#raft.hasReady()) {
        const rd = this.#raft.ready();
        // A leader's appends and heartbeats go out before its own sync, so
        // that followers write to their disks while it writes to its own (Raft thesis 10.2.1):
        // the leader counts itself towards a commit only for entries it has made durable
        // (`log.stable`, set by `advance()`), and promises nothing in these messages that its
        // disk must keep. Anything else (votes, after a change of term or vote) waits.
        const early = this.#opts.faults?.sendBeforeSync === true || this.#leaderOnly(rd);
        if (early) this.#send(rd);
        // Committed entries below this ready's new ones are durable already: they are applied
        // (and their writers answered) without waiting for this ready's sync.
        const durable = this.#durableCommitted(rd);
        this.#applyEntries(rd.committedEntries, 0, durable);
        await this.#persist(rd);
        if (this.#stopped) return;
        if (!early) this.#send(rd);
        this.#applyEntries(rd.committedEntries, durable, rd.committedEntries.length);
        this.#applyReads(rd);
        this.#raft.advance(rd);
        await this.#maybeSnapshot();
      }
    } finally {
      this.#running = false;
    }
    if (!this.#stopped && this.#raft.hasReady()) this.#kick();
  }

  #send(rd: Ready): void {
    for (const m of rd.messages) {
      try {
        this.#opts.send(m);
      } catch { /* Raft retries lost messages. */ }
    }
  }

  async #persist(rd: Ready): Promise<void> {
    const storage = this.#opts.storage;
    if (rd.snapshot) {
      await storage.saveSnapshot(rd.snapshot);
      this.#kv.restore(rd.snapshot.data);
      this.#snapshotIndex = rd.snapshot.meta.index;
      for (const [index, w] of this.#writes) {
        if (index > rd.snapshot.meta.index) continue;
        this.#writes.delete(index);
        w.reject(
          new CellError("UNAVAILABLE", `Outcome of the write at ${index} is unknown: retry it`),
        );
      }
    }
    if (rd.entries.length > 0) storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    // A commit index alone need not be durable: it rides along with the next sync.
    const prev = this.#persistedTermVote;
    const termVote = rd.hardState ? `${rd.hardState.term}/${rd.hardState.vote}` : prev;
    this.#persistedTermVote = termVote;
    if (rd.entries.length > 0 || termVote !== prev) await storage.sync();
  }

  /** True when `rd` is a leader's and changes neither term nor vote. */
  #leaderOnly(rd: Ready): boolean {
    if (this.#raft.role !== "leader" || rd.snapshot) return false;
    const hs = rd.hardState;
    return hs === null || `${hs.term}/${hs.vote}` === this.#persistedTermVote;
  }

  /** How many of `rd`'s committed entries precede its new entries (all of them if none). */
  #durableCommitted(rd: Ready): number {
    if (rd.snapshot) return 0;
    const first = rd.entries[0]?.index ?? Infinity;
    const committed = rd.committedEntries;
    let n = 0;
    while (n < committed.length && committed[n]!.index < first) n++;
    return n;
  }

  #applyEntries(entries: readonly Entry[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const e = entries[i]!;
      if (e.type === "normal") {
        const result = this.#kv.apply(e.index, decodeCommand(e.data));
        this.#opts.hooks?.applied?.(e, result);
        const w = this.#writes.get(e.index);
        if (w) {
          this.#writes.delete(e.index);
          if (w.term === e.term) w.resolve(result);
          else w.reject(new NotLeaderError(this.#raft.leader));
        }
      } else {
        this.#kv.skip(e.index);
        this.#opts.hooks?.applied?.(e, null);
        const c = this.#configs.get(e.index);
        if (c) {
          this.#configs.delete(e.index);
          if (c.term === e.term) c.resolve();
          else c.reject(new NotLeaderError(this.#raft.leader));
        }
      }
    }
  }

  #applyReads(rd: Ready): void {
    for (const rs of rd.readStates) {
      const read = this.#reads.get(rs.context);
      if (read) read.index = rs.index;
    }
    const applied = this.#kv.appliedIndex;
    for (const [context, read] of this.#reads) {
      if (read.index < 0 || read.index > applied) continue;
      this.#reads.delete(context);
      read.resolve({ value: this.#kv.get(read.key), index: applied });
    }
  }

  async #maybeSnapshot(): Promise<void> {
    const every = this.#opts.snapshotEvery ?? 10_000;
    const applied = this.#kv.appliedIndex;
    if (applied - this.#snapshotIndex < every || this.#raft.appliedIndex !== applied) return;
    const snapshot = this.#raft.compact(applied, this.#kv.snapshot());
    this.#opts.hooks?.snapshotted?.(applied, snapshot.data);
    this.#snapshotIndex = applied;
    await this.#opts.storage.saveSnapshot(snapshot);
  }
}

function stoppedError(): CellError {
  return new CellError("UNAVAILABLE", "The consensus member stopped: retry on another member");
}
