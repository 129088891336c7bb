/**
 * One running member of the consensus cell: a Raft node served as the cell `consensus` on its
 * own instance socket (`$CELL_HOME/run/consensus@<id>.sock`), talking to its peers through the
 * same SDK as any client. `main.ts` wraps it in a process; tests start several in one process.
 *
 * @module
 */
import { CellError, instanceSocketPath, serve, type Server } from "@cell/sdk";
import { createNode } from "./node.ts";
import { PeerLinks } from "./_peers.ts";
import { toWireStatus, toWireWrite } from "./_wire.ts";
import { Consensus, CONSENSUS_CELL, toCellError } from "./service.ts";
import type {
  Clock,
  ConsensusNode,
  KvCommand,
  KvSession,
  LogStorage,
  MemberId,
  RaftMessage,
} from "./types.ts";

/** Options of {@linkcode startMember}. */
export interface MemberOptions {
  /** This member's id; also its instance id, so it serves on `run/<cell>@<id>.sock`. */
  id: MemberId;
  /**
   * Initial voting members (including `id`) on a fresh disk; ignored once a config is stored.
   * A function is called once the member serves (and is registered with the nucleus), so that
   * it can find its peers through the nucleus.
   */
  members: MemberId[] | (() => Promise<MemberId[]>);
  /** Durable storage (the write-ahead log in production). */
  storage: LogStorage;
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
   * Where a member serves.
   * @default {"run/<cell>@<id>.sock under the Cell home"}
   */
  addressOf?: (id: MemberId) => string;
  /**
   * Register with the nucleus, as `serve()` does.
   * @default {"auto"}
   */
  register?: boolean | "auto";
  /** Heartbeat interval (ms). @default {50} */
  heartbeatMs?: number;
  /** Base election timeout (ms). @default {400} */
  electionTimeoutMs?: number;
  /** Snapshot after this many applied entries. @default {10000} */
  snapshotEvery?: number;
}

/** A running member. */
export interface Member extends AsyncDisposable {
  /** Its id. */
  readonly id: MemberId;
  /** Its Raft node. */
  readonly node: ConsensusNode;
  /** Its server. */
  readonly server: Server;
  /**
   * Stops serving, then stops the node (pending calls fail with `UNAVAILABLE`) and closes its
   * storage and its links to peers.
   */
  stop(): Promise<void>;
}

/** A real-time clock for the node. */
const CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as number,
  clearTimeout: (handle) => clearTimeout(handle),
};

/** The client session of a command, only when complete (an absent field must not be encoded). */
function session(client: string | undefined, seq: number | undefined): KvSession {
  return client === undefined || seq === undefined ? {} : { client, seq };
}

function isMessage(m: unknown, to: MemberId): m is RaftMessage {
  if (typeof m !== "object" || m === null) return false;
  const r = m as Record<string, unknown>;
  return r.to === to && typeof r.type === "string" && typeof r.from === "string" &&
    typeof r.term === "number";
}

/**
 * Starts a member: creates its Raft node on `storage`, serves the {@linkcode Consensus} service
 * on its instance socket and registers it with the nucleus (when one runs).
 *
 * @example
 * ```ts ignore
 * import { startMember } from "@cell/consensus";
 * import { openWal } from "@cell/consensus/wal";
 * await using member = await startMember({
 *   id: "n1",
 *   members: ["n1", "n2", "n3"],
 *   storage: await openWal("/var/lib/cell/consensus/n1"),
 * });
 * ```
 */
export async function startMember(options: MemberOptions): Promise<Member> {
  const { id } = options;
  const cell = options.cell ?? CONSENSUS_CELL;
  const addressOf = options.addressOf ??
    ((peer: MemberId) => instanceSocketPath(cell, peer, options.home));
  const peers = new PeerLinks({ cell, addressOf, peer: `${cell}@${id}` });
  let node: ConsensusNode | undefined;
  let stopping = false;
  const unavailable = (what: string, cause?: unknown) =>
    new CellError("UNAVAILABLE", `Member "${id}" is ${what}: call another member`, { cause });
  // Every failure leaves as a CellError: not-leader hints, and UNAVAILABLE while starting or
  // stopping.
  const guard = async <T>(work: (node: ConsensusNode) => Promise<T>): Promise<T> => {
    if (stopping) throw unavailable("shutting down");
    if (!node) throw unavailable("starting");
    try {
      return await work(node);
    } catch (e) {
      const error = toCellError(id, e);
      throw stopping && error.code === "UNKNOWN" ? unavailable("shutting down", e) : error;
    }
  };
  const members = (node: ConsensusNode) => {
    const status = node.status();
    return {
      members: status.members,
      ...(status.leader === null ? {} : { leader: status.leader }),
    };
  };
  const write = (command: KvCommand) =>
    guard(async (node) => toWireWrite(await node.write(command)));

  const server = await serve(
    cell,
    Consensus.implement({
      write: ({ key, value, client, seq }) =>
        write({ op: "put", key, value, ...session(client, seq) }),
      delete: ({ key, client, seq }) => write({ op: "delete", key, ...session(client, seq) }),
      cas: ({ key, expected, value, client, seq }) =>
        write({
          op: "cas",
          key,
          expected: expected ?? null,
          value: value ?? null,
          ...session(client, seq),
        }),
      read: ({ key, stale }) =>
        guard(async (node) => {
          const read = await node.read(key, { stale: stale ?? false });
          return { index: read.index, ...(read.value === null ? {} : { value: read.value }) };
        }),
      status: () => guard((node) => Promise.resolve(toWireStatus(node.status()))),
      members: () => guard((node) => Promise.resolve(members(node))),
      addMember: ({ id: peer }) =>
        guard(async (node) => (await node.addMember(peer), members(node))),
      removeMember: ({ id: peer }) =>
        guard(async (node) => (await node.removeMember(peer), members(node))),
      transferLeader: ({ id: peer }) =>
        guard(async (node) => (await node.transferLeadership(peer), members(node))),
      raft: ({ messages }) => {
        if (stopping || !node) return {}; // dropped: Raft resends
        for (const m of messages) {
          if (!isMessage(m, id)) continue;
          try {
            node.receive(m);
          } catch {
            // A malformed message from a peer must not take the member down.
          }
        }
        return {};
      },
    }),
    {
      instanceId: id,
      socket: addressOf(id),
      // Members are called by address only; several may share a process (tests).
      inproc: false,
      handleSignals: false,
      metadata: { member: id },
      ...(options.home === undefined ? {} : { home: options.home }),
      ...(options.register === undefined ? {} : { register: options.register }),
    },
  );

  try {
    const initial = typeof options.members === "function"
      ? await options.members()
      : options.members;
    if (!initial.includes(id)) {
      throw new TypeError(
        `Member "${id}" is not among the members ${JSON.stringify(initial)}: add it`,
      );
    }
    node = await createNode({
      id,
      members: initial,
      storage: options.storage,
      send: (message) => peers.send(message),
      clock: CLOCK,
      random: Math.random,
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
      ...(options.electionTimeoutMs === undefined
        ? {}
        : { electionTimeoutMs: options.electionTimeoutMs }),
      ...(options.snapshotEvery === undefined ? {} : { snapshotEvery: options.snapshotEvery }),
    });
  } catch (e) {
    await server.shutdown({ drainTimeoutMs: 0 });
    await peers.close();
    throw e;
  }
  const running = node;

  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      stopping = true;
      await running.stop(); // fails pending writes first, so that draining does not wait for them
      await server.shutdown({ drainTimeoutMs: 2000 });
      await peers.close();
    })();
  return { id, node: running, server, stop, [Symbol.asyncDispose]: stop };
}
