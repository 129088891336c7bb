/**
 * A client of a consensus cluster: {@linkcode connectConsensus} finds the members, sends writes
 * to the leader (following the "not the leader" hints of the members it asks, and waiting out
 * elections up to a deadline) and reads from any member.
 *
 * @module
 */
import { CellError, instanceSocketPath, runDir } from "@cell/sdk";
import { CONSENSUS_CELL } from "./service.ts";
import { type OperationOptions, Router, type Wire } from "./_router.ts";
import { fromWireStatus, fromWireWrite } from "./_wire.ts";
import { findMembers } from "./_discovery.ts";
import type { KvResult, MemberId, NodeStatus } from "./types.ts";

export type { OperationOptions } from "./_router.ts";

/** Options of {@linkcode connectConsensus}. */
export interface ConsensusClientOptions {
  /**
   * Member ids; each is reached on its instance socket `run/<cell>@<id>.sock`.
   * @default {"the instances the nucleus knows, else the instance sockets found in run/"}
   */
  members?: MemberId[];
  /** Socket path of each member, overriding `members` and discovery. */
  addresses?: Record<MemberId, string>;
  /**
   * The cell's name.
   * @default {"consensus"}
   */
  cell?: string;
  /**
   * The Cell home whose `run/` holds the sockets.
   * @default {"$CELL_HOME, or ~/.cell"}
   */
  home?: string;
  /**
   * Longest an operation may take, redirects and elections included (ms).
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Longest one call to one member may take before another is tried (ms).
   * @default {3000}
   */
  callTimeoutMs?: number;
}

/** What a read returned. */
export interface ReadValue {
  /** The value, or `null` when the key is absent. */
  value: string | null;
  /** Applied log index the answer reflects. */
  index: number;
}

/** One member's status, or why it could not be read. */
export interface MemberReport {
  /** The member. */
  id: MemberId;
  /** Its status, when it answered. */
  status?: NodeStatus;
  /** Why it did not. */
  error?: CellError;
}

/** A client of a consensus cluster, made by {@linkcode connectConsensus}. */
export interface ConsensusClient extends AsyncDisposable {
  /** Sets `key` to `value` on the leader; resolves once committed and applied. */
  write(request: { key: string; value: string }, options?: OperationOptions): Promise<KvResult>;
  /** Removes `key`. */
  delete(request: { key: string }, options?: OperationOptions): Promise<KvResult>;
  /**
   * Sets `key` to `value` (`null`: removes it) if it holds `expected` (`null`: is absent);
   * `ok` says whether it did.
   */
  cas(
    request: { key: string; expected: string | null; value: string | null },
    options?: OperationOptions,
  ): Promise<KvResult>;
  /** Reads `key`: linearizable by default, or from any member's state with `stale: true`. */
  read(request: { key: string; stale?: boolean }, options?: OperationOptions): Promise<ReadValue>;
  /** The status of one member, the leader when known. */
  status(options?: OperationOptions): Promise<NodeStatus>;
  /** The status of every known member, and the error of those that did not answer. */
  statuses(options?: OperationOptions): Promise<MemberReport[]>;
  /** The voting members and the leader. */
  members(options?: OperationOptions): Promise<{ members: MemberId[]; leader: MemberId | null }>;
  /** Adds a voting member. */
  addMember(id: MemberId, options?: OperationOptions): Promise<MemberId[]>;
  /** Removes a voting member. */
  removeMember(id: MemberId, options?: OperationOptions): Promise<MemberId[]>;
  /** Hands leadership to `id`. */
  transferLeader(id: MemberId, options?: OperationOptions): Promise<void>;
  /** The leader as last seen, if any. */
  readonly leader: MemberId | null;
  /** The members this client knows. */
  readonly known: readonly MemberId[];
  /** Closes the connections. */
  close(): Promise<void>;
}

type WireWrite = Awaited<ReturnType<Wire["write"]>>;

/**
 * The client: each operation goes through the router; writes carry a client session so that a
 * retry is applied once.
 */
class Cluster implements ConsensusClient {
  readonly #router: Router;
  /**
   * Client sessions, one per write in flight: the state machine remembers only the latest
   * `seq` of a session, so concurrent writes each take a session of their own ("lane") and a
   * retried write keeps its lane and `seq`.
   */
  readonly #sessionId = crypto.randomUUID();
  readonly #freeLanes: number[] = [];
  readonly #laneSeq: number[] = [];

  constructor(addresses: Map<MemberId, string>, options: ConsensusClientOptions) {
    this.#router = new Router(addresses, options);
  }

  get leader(): MemberId | null {
    return this.#router.leader;
  }

  get known(): readonly MemberId[] {
    return this.#router.known;
  }

  /** Runs a write in a session lane of its own, so that retries are applied once. */
  async #write(
    what: string,
    call: (
      c: Wire,
      session: { client: string; seq: number },
      timeoutMs: number,
    ) => Promise<WireWrite>,
    options: OperationOptions,
  ): Promise<KvResult> {
    const lane = this.#freeLanes.pop() ?? this.#laneSeq.push(0) - 1;
    const session = { client: `${this.#sessionId}/${lane}`, seq: ++this.#laneSeq[lane]! };
    try {
      return fromWireWrite(
        await this.#router.run(what, (c, timeoutMs) => call(c, session, timeoutMs), options, {
          ambiguous: true,
        }),
      );
    } finally {
      // Reusable even after a failure: a later seq supersedes the unanswered one.
      this.#freeLanes.push(lane);
    }
  }

  write(request: { key: string; value: string }, options: OperationOptions = {}) {
    const { key, value } = request;
    return this.#write(
      `write of "${key}"`,
      (c, session, timeoutMs) => c.write({ key, value, ...session }, { timeoutMs }),
      options,
    );
  }

  delete(request: { key: string }, options: OperationOptions = {}) {
    const { key } = request;
    return this.#write(
      `delete of "${key}"`,
      (c, session, timeoutMs) => c.delete({ key, ...session }, { timeoutMs }),
      options,
    );
  }

  cas(
    request: { key: string; expected: string | null; value: string | null },
    options: OperationOptions = {},
  ) {
    const wire = {
      key: request.key,
      ...(request.expected === null ? {} : { expected: request.expected }),
      ...(request.value === null ? {} : { value: request.value }),
    };
    return this.#write(
      `compare-and-set of "${request.key}"`,
      (c, session, timeoutMs) => c.cas({ ...wire, ...session }, { timeoutMs }),
      options,
    );
  }

  read(request: { key: string; stale?: boolean }, options: OperationOptions = {}) {
    const stale = request.stale ?? false;
    return this.#router.run(
      `read of "${request.key}"`,
      async (c, timeoutMs) => {
        const r = await c.read({ key: request.key, stale }, { timeoutMs });
        return { value: r.value ?? null, index: r.index };
      },
      options,
      { ambiguous: true, anyMember: stale },
    );
  }

  async status(options: OperationOptions = {}) {
    const status = await this.#router.run(
      "status",
      async (c, timeoutMs) => fromWireStatus(await c.status({}, { timeoutMs })),
      options,
      { ambiguous: true, anyMember: true },
    );
    this.#router.learn(status.members);
    if (status.leader !== null) this.#router.leader = status.leader;
    return status;
  }

  async statuses(options: OperationOptions = {}) {
    const timeoutMs = options.timeoutMs ?? this.#router.callTimeoutMs;
    const ask = async (id: MemberId): Promise<MemberReport> => {
      try {
        const client = await this.#router.client(id, timeoutMs);
        return { id, status: fromWireStatus(await client.status({}, { timeoutMs })) };
      } catch (e) {
        return { id, error: CellError.from(e) };
      }
    };
    let reports = await Promise.all(this.known.map(ask));
    // Members named by a member's configuration but not found by discovery are down: say so.
    const named = new Set(reports.flatMap((r) => r.status?.members ?? []));
    const missing = [...named].filter((id) => !this.known.includes(id));
    this.#router.learn(missing);
    reports = reports.concat(await Promise.all(missing.map(ask)));
    return reports.sort((a, b) => a.id.localeCompare(b.id));
  }

  async members(options: OperationOptions = {}) {
    const answer = await this.#router.run(
      "members",
      (c, timeoutMs) => c.members({}, { timeoutMs }),
      options,
      { ambiguous: true, anyMember: true },
    );
    this.#router.learn(answer.members);
    return { members: answer.members, leader: answer.leader ?? null };
  }

  async addMember(id: MemberId, options: OperationOptions = {}) {
    const answer = await this.#router.run(
      `adding member "${id}"`,
      (c, timeoutMs) => c.addMember({ id }, { timeoutMs }),
      options,
      { ambiguous: false },
    );
    this.#router.learn(answer.members);
    return answer.members;
  }

  async removeMember(id: MemberId, options: OperationOptions = {}) {
    const answer = await this.#router.run(
      `removing member "${id}"`,
      (c, timeoutMs) => c.removeMember({ id }, { timeoutMs }),
      options,
      { ambiguous: false },
    );
    return answer.members;
  }

  async transferLeader(id: MemberId, options: OperationOptions = {}) {
    await this.#router.run(
      `transferring leadership to "${id}"`,
      (c, timeoutMs) => c.transferLeader({ id }, { timeoutMs }),
      options,
      { ambiguous: false },
    );
    this.#router.leader = id;
  }

  close(): Promise<void> {
    return this.#router.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects to a consensus cluster. The members are `addresses` or `members` when given, else the
 * instances of the cell the nucleus knows, else the instance sockets in `run/`; rejects with
 * `UNAVAILABLE` when none is found. Connections to members are opened as needed.
 *
 * @example
 * ```ts ignore
 * import { connectConsensus } from "@cell/consensus";
 * await using kv = await connectConsensus();
 * await kv.write({ key: "greeting", value: "hello" });
 * console.log((await kv.read({ key: "greeting" })).value); // "hello"
 * ```
 */
export async function connectConsensus(
  options: ConsensusClientOptions = {},
): Promise<ConsensusClient> {
  const cell = options.cell ?? CONSENSUS_CELL;
  let addresses: Map<MemberId, string>;
  if (options.addresses !== undefined) {
    addresses = new Map(Object.entries(options.addresses));
  } else if (options.members !== undefined) {
    addresses = new Map(
      options.members.map((id) => [id, instanceSocketPath(cell, id, options.home)]),
    );
  } else {
    addresses = await findMembers(cell, options.home);
  }
  if (addresses.size === 0) {
    throw new CellError(
      "UNAVAILABLE",
      `No member of '${cell}' found: the nucleus knows no instance and ${runDir(options.home)} ` +
        `holds no ${cell}@<id>.sock. Start the members (\`cell deploy ${cell} ` +
        "cells/consensus/main.ts --instances 3`), or pass their ids with `members`",
    );
  }
  return new Cluster(addresses, options);
}
