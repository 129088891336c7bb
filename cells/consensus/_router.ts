// How a consensus client reaches the leader: one SDK client per member, the leader hint of the
// members' "not the leader" errors followed, the other members tried in turn with backoff while
// there is no leader, until the operation's deadline.
import { CellError, type Client, connect, instanceSocketPath } from "@cell/sdk";
import { Consensus, CONSENSUS_CELL, notLeaderOf } from "./service.ts";
import type { MemberId } from "./types.ts";

/** An SDK client of one member. */
export type Wire = Client<Consensus>;

/** Options of {@linkcode Router}. */
export interface RouterOptions {
  /** The cell's name. @default {"consensus"} */
  cell?: string;
  /** The Cell home. */
  home?: string;
  /** Default deadline of an operation (ms). @default {10000} */
  timeoutMs?: number;
  /** Deadline of one call to one member (ms). @default {3000} */
  callTimeoutMs?: number;
}

/** Options of one operation. */
export interface OperationOptions {
  /** Overrides the client's `timeoutMs` for this operation. */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * While there is no leader, one round of `status` calls to every member at most this often
 * (ms): the new leader knows it is leader at once, while the other members may point to the
 * dead one until their election timeout.
 */
const PROBE_EVERY_MS = 20;
/** Deadline of one probe's `status` call (ms): a hung member must not hold the round up. */
const PROBE_TIMEOUT_MS = 200;

/** Errors after which the call may or may not have reached the state machine. */
function ambiguous(error: CellError): boolean {
  return error.code === "UNAVAILABLE" || error.code === "DEADLINE_EXCEEDED" ||
    error.code === "CANCELLED";
}

/** Which member to call next: the leader hint, else the members in turn; one SDK client each. */
export class Router {
  readonly #cell: string;
  readonly #home: string | undefined;
  readonly #timeoutMs: number;
  /** Deadline of one call to one member (ms). */
  readonly callTimeoutMs: number;
  readonly #addresses: Map<MemberId, string>;
  readonly #clients = new Map<MemberId, Promise<Wire>>();
  #leader: MemberId | null = null;
  #turn = 0;
  #closed = false;
  /** The leader search that operations waiting out an election share, while one runs. */
  #probe: Promise<MemberId | null> | undefined;
  #probedAt = -Infinity;

  constructor(addresses: Map<MemberId, string>, options: RouterOptions) {
    this.#cell = options.cell ?? CONSENSUS_CELL;
    this.#home = options.home;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.callTimeoutMs = options.callTimeoutMs ?? 3000;
    this.#addresses = addresses;
  }

  /** The leader as last seen, if any. */
  get leader(): MemberId | null {
    return this.#leader;
  }

  set leader(id: MemberId | null) {
    this.#leader = id;
  }

  /** The members known. */
  get known(): readonly MemberId[] {
    return [...this.#addresses.keys()];
  }

  /** Adds members named by a configuration or a hint, on their instance sockets. */
  learn(ids: readonly MemberId[]): void {
    for (const id of ids) {
      if (!this.#addresses.has(id)) {
        this.#addresses.set(id, instanceSocketPath(this.#cell, id, this.#home));
      }
    }
  }

  /** The SDK client of member `id`, connecting within `timeoutMs` when there is none. */
  client(id: MemberId, timeoutMs: number): Promise<Wire> {
    let client = this.#clients.get(id);
    if (!client) {
      this.learn([id]);
      client = connect<Consensus>(this.#cell, {
        service: Consensus,
        address: this.#addresses.get(id)!,
        transport: "uds",
        timeoutMs: this.callTimeoutMs,
        connectTimeoutMs: Math.max(1, Math.min(1000, timeoutMs)),
        maxAttempts: 1,
        peer: "consensus-client",
      });
      this.#clients.set(id, client);
      client.catch(() => {
        if (this.#clients.get(id) === client) this.#clients.delete(id);
      });
    }
    return client;
  }

  #next(after?: MemberId): MemberId {
    const ids = this.known;
    if (ids.length === 0) {
      throw new CellError("UNAVAILABLE", `No member of '${this.#cell}' is known`);
    }
    const at = after === undefined ? -1 : ids.indexOf(after);
    return ids[(at >= 0 ? at + 1 : this.#turn++) % ids.length]!;
  }

  /**
   * Calls `call` on the leader (or, with `anyMember`, on any member), following hints and
   * trying the other members until the deadline.
   */
  async run<T>(
    what: string,
    call: (client: Wire, timeoutMs: number) => Promise<T>,
    options: OperationOptions,
    retry: { ambiguous: boolean; anyMember?: boolean },
  ): Promise<T> {
    if (this.#closed) throw new CellError("CANCELLED", "The consensus client is closed");
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const deadline = Date.now() + timeoutMs;
    let target = (retry.anyMember ? null : this.#leader) ?? this.#next();
    let last: CellError | undefined;
    let misses = 0;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw this.#noLeader(what, timeoutMs, last);
      // Each member once without pause, then back off: an election takes a few hundred ms.
      if (misses > 0 && misses % Math.max(1, this.#addresses.size) === 0) {
        const pause = Math.min(remaining, Math.min(250, 20 * 2 ** (misses / this.#addresses.size)));
        if (retry.anyMember) {
          await sleep(pause);
        } else {
          // The pause ends early when a member reports that it leads.
          const found = await this.#awaitLeader(pause);
          if (found !== null) target = found;
        }
      }
      let client: Wire;
      try {
        client = await this.client(target, remaining);
      } catch (e) {
        last = CellError.from(e); // not even connected: certainly not processed
        if (this.#leader === target) this.#leader = null;
        misses++;
        target = this.#next(target);
        continue;
      }
      try {
        const result = await call(client, Math.min(remaining, this.callTimeoutMs));
        if (!retry.anyMember) this.#leader = target;
        return result;
      } catch (e) {
        const error = CellError.from(e);
        const hint = notLeaderOf(error);
        last = error;
        if (hint) {
          this.#leader = hint.leader;
          if (hint.leader !== null && hint.leader !== target) {
            target = hint.leader;
          } else {
            misses++;
            target = this.#next(target);
          }
          continue;
        }
        if (!ambiguous(error)) throw error;
        if (!retry.ambiguous) {
          throw new CellError(
            "UNAVAILABLE",
            `The outcome of ${what} is unknown: member "${target}" failed after receiving it ` +
              `(${error.message}); read the key to see whether it took effect`,
            { cause: error, details: { reason: "OUTCOME_UNKNOWN", member: target } },
          );
        }
        if (this.#leader === target) this.#leader = null;
        misses++;
        target = this.#next(target);
      }
    }
  }

  /** The leader once a member says it leads, or `null` after `ms`. */
  async #awaitLeader(ms: number): Promise<MemberId | null> {
    const until = performance.now() + ms;
    for (;;) {
      const left = until - performance.now();
      if (left <= 0 || this.#closed) return null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const found = await Promise.race([
        this.#probe ??= this.#searchLeader().finally(() => this.#probe = undefined),
        new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), left)),
      ]);
      clearTimeout(timer);
      if (found !== null) return found;
    }
  }

  /**
   * One round of `status` calls to every member, {@linkcode PROBE_EVERY_MS} after the last at
   * the soonest: the member that leads, which becomes the leader hint, or `null`.
   */
  async #searchLeader(): Promise<MemberId | null> {
    await sleep(Math.max(0, this.#probedAt + PROBE_EVERY_MS - performance.now()));
    this.#probedAt = performance.now();
    if (this.#closed) return null;
    const leads = async (id: MemberId) => {
      const client = await this.client(id, PROBE_TIMEOUT_MS);
      const status = await client.status({}, { timeoutMs: PROBE_TIMEOUT_MS });
      if (status.role !== "leader") throw new Error(`"${id}" does not lead`);
      return id;
    };
    const found = await Promise.any(this.known.map(leads)).catch(() => null);
    if (found !== null) this.#leader = found;
    return found;
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.allSettled(clients.map(async (c) => (await c).$close()));
  }

  #noLeader(what: string, timeoutMs: number, last: CellError | undefined): CellError {
    const members = this.known.map((m) => `"${m}"`).join(", ");
    return new CellError(
      "UNAVAILABLE",
      `No leader answered ${what} within ${timeoutMs} ms among members ${members}` +
        (last ? ` (last error: ${last.message})` : "") +
        ": check that a majority of them run (`cell consensus status`)",
      { ...(last === undefined ? {} : { cause: last }), details: { reason: "NO_LEADER" } },
    );
  }
}
