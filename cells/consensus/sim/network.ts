/**
 * A virtual network between simulated members: random delays (hence reordering), drops,
 * duplicates and partitions, all drawn from a seeded generator. Messages cross it as MessagePack,
 * like on a real wire, so no object is shared between members.
 *
 * @module
 */
import { decode, encode } from "@msgpack/msgpack";
import type { MemberId, RaftMessage } from "../types.ts";
import type { Rng } from "./random.ts";
import type { Scheduler } from "./scheduler.ts";

/** Fault rates of the network. */
export interface NetworkFaults {
  /** Probability that a message is lost. @default {0.02} */
  drop?: number;
  /** Probability that a message is delivered twice. @default {0.02} */
  duplicate?: number;
  /** Smallest delay, in virtual ms. @default {1} */
  minDelayMs?: number;
  /** Largest delay, in virtual ms. @default {8} */
  maxDelayMs?: number;
}

/** Delivers messages between registered members. */
export class SimNetwork {
  #scheduler: Scheduler;
  #rng: Rng;
  #faults: Required<NetworkFaults>;
  #handlers = new Map<MemberId, (m: RaftMessage) => void>();
  #cut = new Set<string>();
  /** Messages sent and delivered so far. */
  sent = 0;
  delivered = 0;

  /** A network on `scheduler`, drawing faults from `rng`. */
  constructor(scheduler: Scheduler, rng: Rng, faults: NetworkFaults = {}) {
    this.#scheduler = scheduler;
    this.#rng = rng;
    this.#faults = {
      drop: faults.drop ?? 0.02,
      duplicate: faults.duplicate ?? 0.02,
      minDelayMs: faults.minDelayMs ?? 1,
      maxDelayMs: faults.maxDelayMs ?? 8,
    };
  }

  /** Routes messages for `id` to `handler` (a new incarnation replaces the old). */
  attach(id: MemberId, handler: (m: RaftMessage) => void): void {
    this.#handlers.set(id, handler);
  }

  /** Stops delivering to `id` (a crash or a stop). */
  detach(id: MemberId): void {
    this.#handlers.delete(id);
  }

  /** Splits members into groups that cannot reach one another. */
  partition(groups: MemberId[][]): void {
    this.#cut.clear();
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.#cut.add(`${x}>${y}`);
      }
    }
  }

  /** Removes every partition. */
  heal(): void {
    this.#cut.clear();
  }

  /** Whether `from` can currently reach `to`. */
  connected(from: MemberId, to: MemberId): boolean {
    return !this.#cut.has(`${from}>${to}`);
  }

  /** Sends a message: it may be lost, delayed, or delivered twice. */
  send(message: RaftMessage): void {
    this.sent++;
    const f = this.#faults;
    if (this.#rng.chance(f.drop)) return;
    const wire = encode(message);
    const copies = this.#rng.chance(f.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.#rng.int(f.minDelayMs, f.maxDelayMs);
      this.#scheduler.at(delay, () => {
        // Partitions apply at delivery time: a message in flight when the link is cut is lost.
        if (!this.connected(message.from, message.to)) return;
        const handler = this.#handlers.get(message.to);
        if (!handler) return;
        this.delivered++;
        handler(decode(wire) as RaftMessage);
      });
    }
  }
}
