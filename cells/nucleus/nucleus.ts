/**
 * The nucleus wired together: the singleton lock, the {@linkcode Registry}, the
 * {@linkcode Supervisor}, and the `Nucleus` service served on `$CELL_HOME/run/nucleus.sock`.
 *
 * @module
 */
import { join } from "node:path";
import {
  CellError,
  cellHome,
  checkCellName,
  type Infer,
  loadShm,
  serve,
  type Server,
  socketPath,
  udsTransport,
} from "@cell/sdk";
import { Nucleus, NUCLEUS_CELL, type RegisterRequest } from "@cell/sdk/nucleus_api";
import { type Clock, systemClock } from "./clock.ts";
import { acquireNucleusLock, type LockHolder } from "./lock.ts";
import { Registry } from "./registry.ts";
import { healthReport, topology } from "./report.ts";
import { Supervisor } from "./supervisor.ts";

/** Longest a `watch` waits when the request does not say (ms), before the call's deadline. */
export const DEFAULT_WATCH_WAIT_MS = 30_000;

/** Options of {@linkcode startNucleus}. */
export interface NucleusOptions {
  /**
   * The Cell home to manage; the nucleus serves on `<home>/run/nucleus.sock`.
   * @default {"$CELL_HOME, or ~/.cell"}
   */
  home?: string;
  /**
   * This host's node id.
   * @default {"`node_id` of <home>/config.json, else $CELL_NODE_ID, else the hostname"}
   */
  nodeId?: string;
  /**
   * Heartbeat interval handed out with leases (ms).
   * @default {1000}
   */
  heartbeatIntervalMs?: number;
  /**
   * Heartbeats an instance may miss before it expires.
   * @default {3}
   */
  maxMissed?: number;
  /**
   * Where the registry's time comes from.
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Also serve clients in this process without a socket (only one nucleus per process can).
   * @default {false}
   */
  inproc?: boolean;
  /**
   * Where the nucleus reports what happens (registrations, exits, expiries).
   * @default {writes to stderr}
   */
  log?: (message: string) => void;
}

/** A running nucleus. */
export interface RunningNucleus extends AsyncDisposable {
  /** The Cell home it manages. */
  readonly home: string;
  /** This host's node id. */
  readonly nodeId: string;
  /** The served `nucleus` cell. */
  readonly server: Server;
  /** Registered instances. */
  readonly registry: Registry;
  /** Deployed cells' processes. */
  readonly supervisor: Supervisor;
  /** The previous holder of the lock, when it died holding it (`kill -9`). */
  readonly tookOverFrom: LockHolder | undefined;
  /**
   * Stops serving and releases the lock; with `stopInstances` (the default) also stops the
   * deployed cells' processes, otherwise they keep running for the next nucleus to adopt.
   */
  stop(options?: { stopInstances?: boolean }): Promise<void>;
}

/**
 * This host's node id: `node_id` from `<home>/config.json` (written by `cell init`), else
 * `$CELL_NODE_ID`, else the hostname.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveNodeId } from "@cell/nucleus";
 * assert.ok((await resolveNodeId("/nonexistent")).length > 0);
 * ```
 */
export async function resolveNodeId(home: string): Promise<string> {
  try {
    const config: unknown = JSON.parse(await Deno.readTextFile(join(home, "config.json")));
    const id = (config as { node_id?: unknown } | null)?.node_id;
    if (typeof id === "number" || (typeof id === "string" && id !== "")) return String(id);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new Error(
        `Cannot read ${join(home, "config.json")}: ${(e as Error).message}; fix or remove it, ` +
          "or run 'cell init --node-id N --force'",
        { cause: e },
      );
    }
  }
  return Deno.env.get("CELL_NODE_ID") || Deno.hostname();
}

function checkName(cell: string, allowEmpty = false): void {
  if (allowEmpty && cell === "") return;
  try {
    checkCellName(cell);
  } catch (e) {
    throw new CellError("INVALID_ARGUMENT", (e as Error).message);
  }
}

/** Supervisor failures as `CellError`s: argument mistakes are the caller's, the rest ours. */
async function lifecycle<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (e) {
    if (e instanceof CellError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof TypeError || e instanceof RangeError) {
      throw new CellError("INVALID_ARGUMENT", message, { cause: e });
    }
    if (e instanceof Deno.errors.NotFound) throw new CellError("NOT_FOUND", message, { cause: e });
    throw new CellError("INTERNAL", message, { cause: e });
  }
}

/**
 * Starts the nucleus of a Cell home: takes its lock (failing with `ALREADY_EXISTS` if another
 * nucleus holds it), serves the `Nucleus` service on `<home>/run/nucleus.sock`, and resumes
 * the deployments persisted by a previous run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "@cell/sdk";
 * import { Nucleus } from "@cell/sdk/nucleus_api";
 * import { startNucleus } from "@cell/nucleus";
 *
 * const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-" });
 * const nucleus = await startNucleus({ home, nodeId: "1", log: () => {} });
 * const client = await connect<typeof Nucleus>("nucleus", { service: Nucleus, home });
 * const lease = await client.register({ cell: "my-service", node_id: "", endpoints: [], pid: 1 });
 * await client.heartbeat({ lease_id: lease.lease_id });
 * assert.ok((await client.discover({ cell: "my-service" })).instances.length === 1);
 * await client.$close();
 * await nucleus.stop();
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export async function startNucleus(options: NucleusOptions = {}): Promise<RunningNucleus> {
  const home = options.home ?? cellHome();
  const log = options.log ?? ((message: string) => console.error(`nucleus: ${message}`));
  const lock = await acquireNucleusLock(home);
  let registry: Registry | undefined;
  try {
    const nodeId = options.nodeId ?? await resolveNodeId(home);
    const reg = registry = new Registry({
      nodeId,
      clock: options.clock ?? systemClock,
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      ...(options.maxMissed === undefined ? {} : { maxMissed: options.maxMissed }),
      onExpire: (i) => log(`${i.cell} ${i.instance_id} (pid ${i.pid}) expired: no heartbeats`),
    });
    const supervisor = new Supervisor({
      home,
      nodeId,
      log,
      onInstanceExit: (cell, instanceId) => {
        if (reg.removeInstance(instanceId, cell)) log(`${cell} ${instanceId} exited: deregistered`);
      },
    });
    // A sandboxed instance lives in its own pid namespace and registers as pid 1: the
    // supervisor knows its pid on this host, which is the one worth showing and signalling.
    const hostPid = (request: Infer<typeof RegisterRequest>) => {
      if (!request.instance_id || (request.node_id !== "" && request.node_id !== nodeId)) {
        return request;
      }
      const pid = supervisor.deployments().find((d) => d.cell === request.cell)?.status
        .find((s) => s.instance_id === request.instance_id)?.pid;
      return pid ? { ...request, pid } : request;
    };
    const desired = () =>
      new Map(supervisor.deployments().map((d) => [d.cell, supervisor.desired(d.cell)]));
    const server = await serve(
      NUCLEUS_CELL,
      Nucleus.implement({
        register: (request) => {
          const registered = hostPid(request);
          const lease = reg.register(registered);
          log(`${request.cell} ${lease.instance_id} (pid ${registered.pid}) registered`);
          return lease;
        },
        heartbeat: (request) => reg.heartbeat(request),
        deregister: ({ lease_id }) => (reg.deregister(lease_id), {}),
        discover: ({ cell, all }) => (checkName(cell, true), reg.discover(cell, all ?? false)),
        watch: ({ cell, since, wait_ms }, { deadline, signal }) => {
          checkName(cell, true);
          // Answer a little before the caller gives up, so that it gets the state, not an error.
          const untilDeadline = deadline === Infinity ? Infinity : deadline - Date.now() - 100;
          const waitMs = Math.min(wait_ms ?? DEFAULT_WATCH_WAIT_MS, untilDeadline);
          return reg.watch(cell, since, { waitMs, signal });
        },
        health: () => healthReport(reg.instances(), nodeId, desired()),
        topology: () => topology(reg.instances(), nodeId),
        deploy: (request) => (checkName(request.cell), lifecycle(() => supervisor.deploy(request))),
        scale: ({ cell, instances }) => (
          checkName(cell), lifecycle(() => supervisor.scale(cell, instances))
        ),
        stop: ({ cell }) => (checkName(cell), lifecycle(() => supervisor.stop(cell))),
        deployments: () => ({ deployments: supervisor.deployments() }),
        logs: async (request) => {
          checkName(request.cell);
          return { lines: await lifecycle(() => supervisor.logs(request)) };
        },
        coordinate: () => {
          const coordinate = reg.hostCoordinate;
          return coordinate ? { node_id: nodeId, coordinate } : { node_id: nodeId };
        },
        set_coordinate: ({ coordinate }) => (reg.setHostCoordinate(coordinate), {}),
      }),
      {
        // Unix socket only, given as an endpoint so that serve() adds no shared-memory ring:
        // the nucleus is a control plane with one long-lived, low-rate client per instance,
        // where a ring per client would cost memory and CPU for nothing.
        socket: false,
        endpoints: [{ transport: udsTransport, address: socketPath(NUCLEUS_CELL, home) }],
        inproc: options.inproc ?? false,
        handleSignals: false,
      },
    );
    // Build the shared-memory ring's library now, if it is not built yet: sandboxed instances
    // see its cache read-only and cannot build it themselves, so without this the first
    // deploy on a fresh machine would serve on Unix sockets only. Never throws.
    await loadShm();
    await supervisor.start().catch(async (e) => {
      await server.shutdown({ drainTimeoutMs: 0 });
      throw e;
    });
    let stopped: Promise<void> | undefined;
    const stop = ({ stopInstances = true }: { stopInstances?: boolean } = {}) => {
      stopped ??= (async () => {
        try {
          await supervisor.shutdown({ stopInstances });
        } finally {
          reg.close();
          await server.shutdown({ drainTimeoutMs: 1000 });
          await lock.release();
        }
      })();
      return stopped;
    };
    return {
      home,
      nodeId,
      server,
      registry: reg,
      supervisor,
      tookOverFrom: lock.takenOverFrom,
      stop,
      [Symbol.asyncDispose]: () => stop(),
    };
  } catch (e) {
    registry?.close();
    await lock.release();
    throw e;
  }
}
