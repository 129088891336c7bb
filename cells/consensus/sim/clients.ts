/**
 * Simulated clients: each issues random get/put/delete/cas on a few keys, one at a time, follows
 * leader hints, retries on errors and timeouts (writes keep their session, so a retry applies
 * once), and records what it saw as a history for the linearizability checker.
 *
 * @module
 */
import type { KvInput, KvOutput, Operation } from "../linearizability.ts";
import { type KvCommand, type MemberId, NotLeaderError } from "../types.ts";
import type { SimCluster } from "./cluster.ts";
import type { Rng } from "./random.ts";

/** Workload settings. */
export interface ClientOptions {
  /** Number of concurrent clients. @default {4} */
  clients?: number;
  /** Keys the clients touch. @default {["a", "b", "c"]} */
  keys?: string[];
  /** One attempt's timeout, in virtual ms. @default {400} */
  attemptTimeoutMs?: number;
  /** Give up on an operation (outcome unknown for writes) after this long. @default {2500} */
  operationTimeoutMs?: number;
}

const TIMEOUT = Symbol("timeout");

/** A client of the simulated cluster. */
export class SimClient {
  #n: number;
  #cluster: SimCluster;
  #rng: Rng;
  #opts: Required<ClientOptions>;
  #history: Operation[];
  #seq = 0;
  #written: string[] = [];
  #target: MemberId | null = null;

  constructor(
    n: number,
    cluster: SimCluster,
    rng: Rng,
    history: Operation[],
    opts: Required<ClientOptions>,
  ) {
    this.#n = n;
    this.#cluster = cluster;
    this.#rng = rng;
    this.#history = history;
    this.#opts = opts;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#cluster.scheduler.at(ms, resolve));
  }

  /** Issues operations until virtual time `until`. */
  async run(until: number): Promise<void> {
    const scheduler = this.#cluster.scheduler;
    while (scheduler.now < until) {
      await this.#operation(this.#input());
      await this.#sleep(this.#rng.int(0, 30));
    }
  }

  #input(): KvInput {
    const rng = this.#rng;
    const key = rng.pick(this.#opts.keys);
    const value = `${this.#n}.${this.#seq + 1}`;
    const r = rng.next();
    if (r < 0.4) return { op: "get", key };
    const session = { client: `c${this.#n}`, seq: ++this.#seq };
    if (r < 0.65) return { op: "put", key, value, ...session };
    if (r < 0.75) return { op: "delete", key, ...session };
    const seen = [null, ...this.#written.slice(-4)];
    const expected = rng.pick(seen);
    return { op: "cas", key, expected, value: rng.chance(0.1) ? null : value, ...session };
  }

  async #operation(input: KvInput): Promise<void> {
    const scheduler = this.#cluster.scheduler;
    const call = scheduler.now;
    const deadline = call + this.#opts.operationTimeoutMs;
    const rng = this.#rng;
    // Reads may go to any member: followers serve them through ReadIndex too.
    if (input.op === "get" && rng.chance(0.5)) this.#target = rng.pick(this.#cluster.ids);
    while (scheduler.now < deadline) {
      const ids = this.#cluster.running;
      const target = this.#target !== null && ids.includes(this.#target)
        ? this.#target
        : ids.length > 0
        ? rng.pick(ids)
        : null;
      const node = target === null ? undefined : this.#cluster.node(target);
      if (!node) {
        this.#target = null;
        await this.#sleep(rng.int(10, 50));
        continue;
      }
      const attempt: Promise<KvOutput> = input.op === "get"
        ? node.read(input.key).then((r) => ({ value: r.value }))
        : node.write(input as KvCommand).then((r) =>
          input.op === "cas" ? { ok: r.ok, previous: r.previous } : { previous: r.previous }
        );
      const timer = new Promise<typeof TIMEOUT>((resolve) =>
        scheduler.at(this.#opts.attemptTimeoutMs, () => resolve(TIMEOUT))
      );
      let outcome: KvOutput | typeof TIMEOUT | Error;
      try {
        outcome = await Promise.race([attempt, timer]);
      } catch (error) {
        outcome = error instanceof Error ? error : new Error(String(error));
      }
      if (outcome !== TIMEOUT && !(outcome instanceof Error)) {
        if (input.op !== "get" && "value" in input && input.value !== null) {
          this.#written.push(input.value);
        }
        this.#history.push({
          client: this.#n,
          input,
          call,
          return: scheduler.now,
          output: outcome,
        });
        return;
      }
      // Reads go anywhere; writes follow the hint, else try another member.
      const hint = outcome instanceof NotLeaderError ? outcome.leader : null;
      this.#target = hint !== null && hint !== target ? hint : rng.pick(ids);
      // Never retry at once: stale hints could bounce a client between two members forever.
      await this.#sleep(hint === null ? rng.int(5, 40) : rng.int(1, 5));
    }
    // Gave up: a write may still take effect, a read tells nothing.
    if (input.op !== "get") {
      if ("value" in input && input.value !== null) this.#written.push(input.value);
      this.#history.push({ client: this.#n, input, call, return: Infinity });
    }
  }
}
