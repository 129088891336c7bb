/**
 * Simulated members: the real {@linkcode createNode} over a {@linkcode SimDisk}, a
 * {@linkcode SimClock} and the {@linkcode SimNetwork}, with crashes, restarts, and the Raft safety
 * invariants checked as the run goes.
 *
 * @module
 */
import { createNode, type NodeFaults } from "../node.ts";
import type { ConsensusNode, Entry, KvResult, MemberId } from "../types.ts";
import { SimClock } from "./clock.ts";
import { type DiskOptions, SimDisk } from "./disk.ts";
import { type NetworkFaults, SimNetwork } from "./network.ts";
import type { Rng } from "./random.ts";
import type { Scheduler } from "./scheduler.ts";

/** Timing and fault settings of the simulated members. */
export interface ClusterOptions {
  /** Heartbeat interval. @default {50} */
  heartbeatMs?: number;
  /** Base election timeout. @default {300} */
  electionTimeoutMs?: number;
  /** Raft tick. @default {25} */
  tickMs?: number;
  /** Snapshot every this many applied entries. @default {40} */
  snapshotEvery?: number;
  /** Entries per append message. @default {16} */
  maxBatch?: number;
  /** Network faults. */
  network?: NetworkFaults;
  /** Disk delays and torn tails. */
  disk?: DiskOptions;
  /** Deliberate defects of every member. */
  faults?: NodeFaults;
}

interface Running {
  node: ConsensusNode;
  clock: SimClock;
}

const hex = (data: Uint8Array) => Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");

/** A set of simulated members and the invariants they must keep. */
export class SimCluster {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly anomalies: string[] = [];
  readonly trace: string[] = [];
  #rng: Rng;
  #opts: ClusterOptions;
  #disks = new Map<MemberId, SimDisk>();
  #running = new Map<MemberId, Running>();
  #leaders = new Map<number, MemberId>();
  #applied = new Map<number, string>();
  #snapshots = new Map<number, string>();
  #initial = new Map<MemberId, MemberId[]>();

  constructor(scheduler: Scheduler, rng: Rng, options: ClusterOptions = {}) {
    this.scheduler = scheduler;
    this.#rng = rng;
    this.#opts = options;
    this.network = new SimNetwork(scheduler, rng.fork(), options.network);
  }

  /** Members with a disk (running or crashed). */
  get ids(): MemberId[] {
    return [...this.#disks.keys()];
  }

  /** Members currently running. */
  get running(): MemberId[] {
    return [...this.#running.keys()];
  }

  /** The running member `id`, if any. */
  node(id: MemberId): ConsensusNode | undefined {
    return this.#running.get(id)?.node;
  }

  /** The running member that believes it leads with the highest term, if any. */
  leader(): MemberId | null {
    let best: { id: MemberId; term: number } | null = null;
    for (const [id, r] of this.#running) {
      const s = r.node.status();
      if (s.role === "leader" && (!best || s.term > best.term)) best = { id, term: s.term };
    }
    return best?.id ?? null;
  }

  #log(line: string): void {
    this.trace.push(`${this.scheduler.now} ${line}`);
  }

  /**
   * Starts member `id`, or restarts it over its surviving disk with the member list it first
   * started with (as a real deployment passes the same flags again).
   */
  async start(id: MemberId, members: MemberId[] = []): Promise<void> {
    if (this.#running.has(id)) return;
    if (!this.#initial.has(id)) this.#initial.set(id, members);
    members = this.#initial.get(id)!;
    let disk = this.#disks.get(id);
    if (!disk) {
      disk = new SimDisk(this.scheduler, this.#rng.fork(), this.#opts.disk);
      this.#disks.set(id, disk);
    }
    const clock = new SimClock(this.scheduler);
    const random = this.#rng.fork();
    const o = this.#opts;
    const node = await createNode({
      id,
      members,
      storage: disk.open(),
      send: (m) => this.network.send(m),
      clock,
      random: () => random.next(),
      heartbeatMs: o.heartbeatMs ?? 50,
      electionTimeoutMs: o.electionTimeoutMs ?? 300,
      tickMs: o.tickMs ?? 25,
      snapshotEvery: o.snapshotEvery ?? 40,
      maxBatch: o.maxBatch ?? 16,
      faults: o.faults,
      hooks: {
        applied: (entry, result) => this.#checkApplied(id, entry, result),
        snapshotted: (index, data) => this.#checkSnapshot(id, index, data),
      },
    });
    this.#running.set(id, { node, clock });
    this.network.attach(id, (m) => node.receive(m));
    this.#log(`start ${id}`);
  }

  /** Kills member `id` at once: timers and disk writes in progress die, unsynced data is lost. */
  crash(id: MemberId): void {
    const r = this.#running.get(id);
    if (!r) return;
    this.#running.delete(id);
    this.network.detach(id);
    r.clock.kill();
    this.#disks.get(id)?.crash();
    this.#log(`crash ${id}`);
  }

  /** Stops member `id` for good and forgets its disk (after its removal from the cluster). */
  destroy(id: MemberId): void {
    this.crash(id);
    this.#disks.delete(id);
    this.#initial.delete(id);
    this.#log(`destroy ${id}`);
  }

  /** Checks that no two members lead the same term. Call after every event. */
  checkLeaders(): void {
    for (const [id, r] of this.#running) {
      const s = r.node.status();
      if (s.role !== "leader") continue;
      const known = this.#leaders.get(s.term);
      if (known === undefined) {
        this.#leaders.set(s.term, id);
        this.#log(`leader ${id} term ${s.term}`);
      } else if (known !== id) {
        this.anomalies.push(`Two leaders in term ${s.term}: "${known}" and "${id}"`);
      }
    }
  }

  #checkApplied(id: MemberId, entry: Entry, result: KvResult | null): void {
    const digest = `${entry.term}/${entry.type}/${
      hex(entry.data)
    }/${result?.ok}/${result?.previous}`;
    const known = this.#applied.get(entry.index);
    if (known === undefined) this.#applied.set(entry.index, digest);
    else if (known !== digest) {
      this.anomalies.push(
        `"${id}" applied ${digest} at index ${entry.index}, another member applied ${known}`,
      );
    }
  }

  #checkSnapshot(id: MemberId, index: number, data: Uint8Array): void {
    const digest = hex(data);
    const known = this.#snapshots.get(index);
    if (known === undefined) this.#snapshots.set(index, digest);
    else if (known !== digest) {
      this.anomalies.push(`"${id}" has a different state machine at index ${index}`);
    }
  }

  /** Highest index any member applied. */
  get appliedIndex(): number {
    let max = 0;
    for (const i of this.#applied.keys()) max = Math.max(max, i);
    return max;
  }
}
