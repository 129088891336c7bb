/**
 * One simulated history: a cluster of real members under a seeded nemesis (crashes, restarts,
 * partitions, leadership transfers, membership changes) with clients recording a history, then
 * the linearizability check. The same seed gives the same history, byte for byte.
 *
 * @module
 */
import { checkKv, type Operation } from "../linearizability.ts";
import { type ClientOptions, SimClient } from "./clients.ts";
import { type ClusterOptions, SimCluster } from "./cluster.ts";
import { Rng } from "./random.ts";
import { Scheduler } from "./scheduler.ts";

/** Options of {@linkcode runHistory}. */
export interface HistoryOptions extends ClusterOptions, ClientOptions {
  /** Virtual ms of client activity under faults. @default {6000} */
  durationMs?: number;
  /** Members at the start. @default {3} */
  initialMembers?: number;
  /** Mean virtual ms between nemesis actions; `0` disables them. @default {400} */
  nemesisMs?: number;
  /** Wall-clock budget of the linearizability check, in ms. @default {10000} */
  checkTimeoutMs?: number;
}

/** What one history produced. */
export interface HistoryResult {
  /** The seed it ran with. */
  seed: number;
  /** Safety violations and linearizability failures; empty when all is well. */
  anomalies: string[];
  /** The client history that was checked. */
  history: Operation[];
  /** Cluster events (starts, crashes, leaders, nemesis actions), with virtual times. */
  trace: string[];
  /** Operations that completed with a known result. */
  completed: number;
  /** Highest index applied by any member. */
  appliedIndex: number;
  /** Scheduler events run. */
  steps: number;
}

/**
 * Runs one randomized fault history seeded `seed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runHistory } from "@cell/consensus/sim";
 * const result = await runHistory(7, { durationMs: 500 });
 * assert.ok(result.anomalies.length === 0);
 * ```
 */
export async function runHistory(
  seed: number,
  options: HistoryOptions = {},
): Promise<HistoryResult> {
  const rng = new Rng(seed);
  const scheduler = new Scheduler();
  const cluster = new SimCluster(scheduler, rng.fork(), options);
  const nemesisRng = rng.fork();
  const clientRng = rng.fork();
  const duration = options.durationMs ?? 6000;
  let nextId = 0;
  const newId = () => `n${++nextId}`;
  const initial = Array.from({ length: options.initialMembers ?? 3 }, newId);
  for (const id of initial) await cluster.start(id, initial);

  const history: Operation[] = [];
  const clientOpts: Required<ClientOptions> = {
    clients: options.clients ?? 4,
    keys: options.keys ?? ["a", "b", "c"],
    attemptTimeoutMs: options.attemptTimeoutMs ?? 400,
    operationTimeoutMs: options.operationTimeoutMs ?? 2500,
  };
  const clients = Array.from(
    { length: clientOpts.clients },
    (_, i) => new SimClient(i, cluster, clientRng.fork(), history, clientOpts),
  );
  let clientsDone = 0;
  for (const c of clients) void c.run(duration).then(() => clientsDone++);

  const nemesis = new Nemesis(cluster, nemesisRng, newId, options.nemesisMs ?? 400);
  nemesis.schedule(duration);

  const quiesce = duration + clientOpts.operationTimeoutMs + 1000;
  await scheduler.run(quiesce + 4000, () => {
    cluster.checkLeaders();
    return clientsDone === clients.length && scheduler.now > quiesce;
  });
  cluster.checkLeaders();
  if (clientsDone < clients.length) cluster.anomalies.push("Clients did not finish: the run hung");

  const anomalies = [...cluster.anomalies];
  const check = checkKv(history, { timeoutMs: options.checkTimeoutMs ?? 10_000 });
  if (!check.ok) {
    anomalies.push(
      check.timedOut
        ? `Linearizability check timed out on key "${check.key}"`
        : `Not linearizable on key "${check.key}": ${check.explanation}`,
    );
  }
  return {
    seed,
    anomalies,
    history,
    trace: cluster.trace,
    completed: history.filter((op) => op.return !== Infinity).length,
    appliedIndex: cluster.appliedIndex,
    steps: scheduler.steps,
  };
}

/** Schedules the faults of a history. */
class Nemesis {
  #cluster: SimCluster;
  #rng: Rng;
  #newId: () => string;
  #meanMs: number;
  #until = 0;

  constructor(cluster: SimCluster, rng: Rng, newId: () => string, meanMs: number) {
    this.#cluster = cluster;
    this.#rng = rng;
    this.#newId = newId;
    this.#meanMs = meanMs;
  }

  schedule(until: number): void {
    this.#until = until;
    if (this.#meanMs > 0) this.#next();
    // Whatever the nemesis did, the end of the run is calm: healed and restarted.
    this.#cluster.scheduler.at(until, () => this.#calm());
  }

  #next(): void {
    const s = this.#cluster.scheduler;
    s.at(this.#rng.int(this.#meanMs / 2, this.#meanMs * 3 / 2), () => {
      if (s.now >= this.#until) return;
      this.#act();
      this.#next();
    });
  }

  #log(line: string): void {
    this.#cluster.trace.push(`${this.#cluster.scheduler.now} nemesis ${line}`);
  }

  #members(): string[] {
    const leader = this.#cluster.leader();
    return leader === null ? this.#cluster.ids : this.#cluster.node(leader)!.status().members;
  }

  #act(): void {
    const c = this.#cluster;
    const rng = this.#rng;
    const r = rng.next();
    const s = c.scheduler;
    if (r < 0.3) {
      const down = c.ids.filter((id) => !c.running.includes(id));
      if (down.length > 1 || c.running.length === 0) return;
      const id = rng.pick(c.running);
      this.#log(`crash ${id}`);
      c.crash(id);
      s.at(rng.int(50, 1200), () => void this.#restart(id));
    } else if (r < 0.55) {
      const ids = c.ids;
      const groups: string[][] = [[], []];
      for (const id of ids) groups[rng.int(0, 1)]!.push(id);
      this.#log(`partition ${groups.map((g) => g.join(",")).join(" | ")}`);
      c.network.partition(groups);
      s.at(rng.int(100, 1500), () => {
        this.#log("heal");
        c.network.heal();
      });
    } else if (r < 0.7) {
      const leader = c.leader();
      if (leader === null) return;
      const others = this.#members().filter((id) => id !== leader);
      if (others.length === 0) return;
      const to = rng.pick(others);
      this.#log(`transfer ${leader} -> ${to}`);
      c.node(leader)!.transferLeadership(to).catch(() => {});
    } else if (r < 0.85) {
      void this.#changeMembers();
    }
  }

  async #restart(id: string): Promise<void> {
    const c = this.#cluster;
    if (c.running.includes(id) || !c.ids.includes(id)) return;
    this.#log(`restart ${id}`);
    await c.start(id);
  }

  async #changeMembers(): Promise<void> {
    const c = this.#cluster;
    const rng = this.#rng;
    const leader = c.leader();
    if (leader === null) return;
    const node = c.node(leader)!;
    const members = node.status().members;
    if (members.length < 5 && (members.length <= 3 || rng.chance(0.5))) {
      const id = this.#newId();
      this.#log(`add ${id}`);
      await c.start(id, []);
      try {
        await node.addMember(id);
        this.#log(`added ${id}`);
      } catch {
        this.#log(`add ${id} failed`);
      }
    } else if (members.length > 3) {
      const id = rng.pick(members.filter((m) => m !== leader));
      this.#log(`remove ${id}`);
      try {
        await node.removeMember(id);
        this.#log(`removed ${id}`);
        c.destroy(id);
      } catch {
        this.#log(`remove ${id} failed`);
      }
    }
  }

  #calm(): void {
    const c = this.#cluster;
    this.#log("calm");
    c.network.heal();
    for (const id of c.ids) void this.#restart(id);
  }
}
