/**
 * The nucleus's service definition: the contract between the nucleus cell (`@cell/nucleus`,
 * which implements it), the SDK (which registers every served cell and discovers instances
 * through it) and the `cell` CLI. It lives in the SDK so that none of them depends on the
 * nucleus package.
 *
 * @module
 */
// Explicit types on every export: JSR's fast check needs them (no inference in the public API).
import type {
  TArray,
  TBoolean,
  TInteger,
  TLiteral,
  TNumber,
  TOptional,
  TRecord,
  TString,
  TUnion,
} from "@sinclair/typebox";
import { type Protein, protein, t } from "./protein.ts";
import { type Method, method, type Service, service } from "./service.ts";

/** The nucleus's cell name; it serves on `$CELL_HOME/run/nucleus.sock`. */
export const NUCLEUS_CELL = "nucleus";

/** Heartbeat interval handed out with a lease unless the nucleus is told otherwise (ms). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;

/** Heartbeats an instance may miss before it expires. */
export const DEFAULT_MAX_MISSED_HEARTBEATS = 3;

/** Where one instance can be reached. */
export const InstanceEndpoint: Protein<{ transport: TString; address: TString }> = protein(
  "InstanceEndpoint",
  {
    /** Transport name: `"uds"`, `"shm"`, `"quic"`, ... */
    transport: t.string(),
    /** Transport-specific address (a socket path for `uds`). */
    address: t.string(),
  },
);

/**
 * A Vivaldi network coordinate (see `@cell/vivaldi`): distances between coordinates predict
 * round-trip times. All fields are in seconds, as in hashicorp/serf.
 */
export const Coordinate: Protein<
  { vec: TArray<TNumber>; error: TNumber; adjustment: TNumber; height: TNumber }
> = protein("Coordinate", {
  /** Euclidean part, one entry per dimension. */
  vec: t.list(t.f64()),
  /** Confidence: 0 is certain, 1.5 is unknown. */
  error: t.f64(),
  /** Average offset between measured and estimated RTTs, added to estimates. */
  adjustment: t.f64(),
  /** Access-link latency that does not fit the Euclidean model. */
  height: t.f64(),
});

/** A coordinate as plain data. */
export interface CoordinateValue {
  readonly vec: readonly number[];
  readonly error: number;
  readonly adjustment: number;
  readonly height: number;
}

/**
 * Estimated round-trip time in seconds between two coordinates (serf `DistanceTo`): the
 * Euclidean distance plus both heights plus both adjustments, unless the adjustments would make
 * it non-positive. The meaning of a {@linkcode Coordinate}, shared by the nucleus, the SDK's
 * `nearest` balancing and `@cell/vivaldi`.
 *
 * @throws {TypeError} If the coordinates have different numbers of dimensions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateRtt } from "@cell/sdk/nucleus_api";
 * const a = { vec: [0, 0], error: 0, adjustment: 0, height: 0.01 };
 * const b = { vec: [0.03, 0.04], error: 0, adjustment: 0, height: 0.01 };
 * assert.ok(Math.abs(estimateRtt(a, b) - 0.07) < 1e-12);
 * ```
 */
export function estimateRtt(a: CoordinateValue, b: CoordinateValue): number {
  if (a.vec.length !== b.vec.length) {
    throw new TypeError(`Coordinate dimensions differ: ${a.vec.length} and ${b.vec.length}`);
  }
  let s = 0;
  for (let i = 0; i < a.vec.length; i++) {
    const d = a.vec[i]! - b.vec[i]!;
    s += d * d;
  }
  const raw = Math.sqrt(s) + a.height + b.height;
  const adjusted = raw + a.adjustment + b.adjustment;
  return adjusted > 0 ? adjusted : raw;
}

/** Health of one instance as the nucleus sees it. */
export const Health: TUnion<TLiteral<"healthy" | "unhealthy" | "starting" | "expired">[]> = t.enum(
  "healthy",
  "unhealthy",
  "starting",
  "expired",
);

/** One registered instance of a cell. */
export const Instance: Protein<
  {
    cell: TString;
    node_id: TString;
    instance_id: TString;
    endpoints: TArray<(typeof InstanceEndpoint)["schema"]>;
    pid: TInteger;
    metadata: TRecord<TString, TString>;
    health: typeof Health;
    registered_at_ms: TInteger;
    last_heartbeat_ms: TInteger;
    in_flight: TInteger;
    coordinate: TOptional<(typeof Coordinate)["schema"]>;
  }
> = protein("Instance", {
  /** The cell it is an instance of. */
  cell: t.string(),
  /** Host (node) id, from `cell init --node-id`. */
  node_id: t.string(),
  /** Unique per nucleus. */
  instance_id: t.string(),
  /** Where it can be reached, best first. */
  endpoints: t.list(InstanceEndpoint),
  /** Its process id. */
  pid: t.u32(),
  /** Free-form labels (version, zone, ...). */
  metadata: t.map(t.string()),
  /** Health from heartbeats: `starting` until the first heartbeat after registration. */
  health: Health,
  /** Milliseconds since the epoch of registration. */
  registered_at_ms: t.u64(),
  /** Milliseconds since the epoch of the last heartbeat. */
  last_heartbeat_ms: t.u64(),
  /** Calls in flight, as last reported by its heartbeat. */
  in_flight: t.u32(),
  /** Its own network coordinate, as last reported by its heartbeat, when it measures one. */
  coordinate: t.optional(Coordinate),
});

/** Registration of an instance. */
export const RegisterRequest: Protein<
  {
    cell: TString;
    node_id: TString;
    instance_id: TOptional<TString>;
    endpoints: TArray<(typeof InstanceEndpoint)["schema"]>;
    pid: TInteger;
    metadata: TOptional<TRecord<TString, TString>>;
  }
> = protein("RegisterRequest", {
  cell: t.string(),
  node_id: t.string(),
  /** Chosen by the instance (e.g. from `CELL_INSTANCE_ID`), or left empty for the nucleus to pick. */
  instance_id: t.optional(t.string()),
  endpoints: t.list(InstanceEndpoint),
  pid: t.u32(),
  metadata: t.optional(t.map(t.string())),
});

/** What registration grants: heartbeat with `lease_id` every `heartbeat_interval_ms`. */
export const Lease: Protein<
  { lease_id: TString; instance_id: TString; heartbeat_interval_ms: TInteger; max_missed: TInteger }
> = protein("Lease", {
  lease_id: t.string(),
  instance_id: t.string(),
  heartbeat_interval_ms: t.u32(),
  /** The instance expires after this many intervals without a heartbeat. */
  max_missed: t.u32(),
});

export const HeartbeatRequest: Protein<
  {
    lease_id: TString;
    healthy: TOptional<TBoolean>;
    in_flight: TOptional<TInteger>;
    coordinate: TOptional<(typeof Coordinate)["schema"]>;
  }
> = protein("HeartbeatRequest", {
  lease_id: t.string(),
  /** `false` reports the instance unhealthy while it keeps its lease. */
  healthy: t.optional(t.bool()),
  in_flight: t.optional(t.u32()),
  /** The instance's network coordinate, when it measures one (absent keeps the last one). */
  coordinate: t.optional(Coordinate),
});

export const HeartbeatResponse: Protein<{ heartbeat_interval_ms: TInteger }> = protein(
  "HeartbeatResponse",
  {
    heartbeat_interval_ms: t.u32(),
  },
);

export const LeaseRequest: Protein<{ lease_id: TString }> = protein("LeaseRequest", {
  lease_id: t.string(),
});

export const Empty: Protein<Record<never, never>> = protein("Empty", {});

export const DiscoverRequest: Protein<{ cell: TString; all: TOptional<TBoolean> }> = protein(
  "DiscoverRequest",
  {
    cell: t.string(),
    /** Include unhealthy, starting and expired instances too. */
    all: t.optional(t.bool()),
  },
);

export const Instances: Protein<
  {
    version: TInteger;
    instances: TArray<(typeof Instance)["schema"]>;
    coordinate: TOptional<(typeof Coordinate)["schema"]>;
  }
> = protein("Instances", {
  /** Registry version when this answer was made; pass it to `watch`. */
  version: t.u64(),
  instances: t.list(Instance),
  /** This host's coordinate, when one is known: where a client asking from this host stands. */
  coordinate: t.optional(Coordinate),
});

/** A host's coordinate, when one is known. */
export const HostCoordinate: Protein<
  { node_id: TString; coordinate: TOptional<(typeof Coordinate)["schema"]> }
> = protein("HostCoordinate", {
  node_id: t.string(),
  coordinate: t.optional(Coordinate),
});

/** A new coordinate for this host, measured by its Vivaldi cell. */
export const SetCoordinateRequest: Protein<{ coordinate: (typeof Coordinate)["schema"] }> = protein(
  "SetCoordinateRequest",
  { coordinate: Coordinate },
);

/** A blocking query, like Consul's: answers as soon as the registry version passes `since`. */
export const WatchRequest: Protein<
  { cell: TString; since: TInteger; wait_ms: TOptional<TInteger> }
> = protein("WatchRequest", {
  /** A cell name, or empty for every cell. */
  cell: t.string(),
  since: t.u64(),
  /** Longest wait before answering with the unchanged state (ms, capped by the call's deadline). */
  wait_ms: t.optional(t.u32()),
});

export const CellHealth: Protein<
  {
    cell: TString;
    healthy: TInteger;
    unhealthy: TInteger;
    desired: TInteger;
    status: TUnion<TLiteral<"healthy" | "degraded" | "down">[]>;
  }
> = protein("CellHealth", {
  cell: t.string(),
  healthy: t.u32(),
  unhealthy: t.u32(),
  /** Instances wanted by a deployment (0 when the cell is not deployed by this nucleus). */
  desired: t.u32(),
  status: t.enum("healthy", "degraded", "down"),
});

export const HostHealth: Protein<
  {
    node_id: TString;
    cells: TInteger;
    instances: TInteger;
    healthy: TInteger;
    status: TUnion<TLiteral<"healthy" | "degraded" | "down">[]>;
  }
> = protein("HostHealth", {
  node_id: t.string(),
  cells: t.u32(),
  instances: t.u32(),
  healthy: t.u32(),
  status: t.enum("healthy", "degraded", "down"),
});

export const HealthReport: Protein<
  {
    status: TUnion<TLiteral<"healthy" | "degraded" | "down">[]>;
    cells: TArray<(typeof CellHealth)["schema"]>;
    hosts: TArray<(typeof HostHealth)["schema"]>;
  }
> = protein("HealthReport", {
  status: t.enum("healthy", "degraded", "down"),
  cells: t.list(CellHealth),
  hosts: t.list(HostHealth),
});

export const TopologyHost: Protein<
  { node_id: TString; instances: TArray<(typeof Instance)["schema"]> }
> = protein("TopologyHost", {
  node_id: t.string(),
  instances: t.list(Instance),
});

export const Topology: Protein<
  { node_id: TString; hosts: TArray<(typeof TopologyHost)["schema"]> }
> = protein("Topology", {
  /** This nucleus's node id. */
  node_id: t.string(),
  hosts: t.list(TopologyHost),
});

export const DeployRequest: Protein<
  {
    cell: TString;
    module: TString;
    instances: TInteger;
    sandbox: TOptional<TBoolean>;
    args: TOptional<TArray<TString>>;
  }
> = protein("DeployRequest", {
  cell: t.string(),
  /** Path (absolute, or relative to the nucleus's working directory) or URL of the main module. */
  module: t.string(),
  instances: t.u32(),
  /** `false` runs without bubblewrap (development). */
  sandbox: t.optional(t.bool()),
  /** Extra arguments for the module. */
  args: t.optional(t.list(t.string())),
});

export const InstanceStatus: Protein<
  {
    instance_id: TString;
    pid: TInteger;
    state: TUnion<TLiteral<"starting" | "running" | "backoff" | "stopped" | "failed">[]>;
    restarts: TInteger;
    last_exit_code: TOptional<TInteger>;
    last_error: TOptional<TString>;
  }
> = protein("InstanceStatus", {
  instance_id: t.string(),
  pid: t.u32(),
  state: t.enum("starting", "running", "backoff", "stopped", "failed"),
  restarts: t.u32(),
  /** Exit code of the last exit, if it exited. */
  last_exit_code: t.optional(t.i32()),
  /** Why it last stopped or failed, in words. */
  last_error: t.optional(t.string()),
});

export const Deployment: Protein<
  {
    cell: TString;
    module: TString;
    instances: TInteger;
    sandbox: TString;
    permissions: TArray<TString>;
    status: TArray<(typeof InstanceStatus)["schema"]>;
  }
> = protein("Deployment", {
  cell: t.string(),
  module: t.string(),
  instances: t.u32(),
  /** `"bwrap"` or `"none"`: what the instances actually run in. */
  sandbox: t.string(),
  /** Deno permission flags the instances run with. */
  permissions: t.list(t.string()),
  status: t.list(InstanceStatus),
});

export const Deployments: Protein<{ deployments: TArray<(typeof Deployment)["schema"]> }> = protein(
  "Deployments",
  { deployments: t.list(Deployment) },
);

export const ScaleRequest: Protein<{ cell: TString; instances: TInteger }> = protein(
  "ScaleRequest",
  { cell: t.string(), instances: t.u32() },
);

export const CellRequest: Protein<{ cell: TString }> = protein("CellRequest", { cell: t.string() });

export const LogsRequest: Protein<
  { cell: TString; instance_id: TOptional<TString>; tail: TOptional<TInteger> }
> = protein("LogsRequest", {
  cell: t.string(),
  instance_id: t.optional(t.string()),
  /** Last lines to return. */
  tail: t.optional(t.u32()),
});

export const LogLine: Protein<
  {
    instance_id: TString;
    stream: TUnion<TLiteral<"stdout" | "stderr">[]>;
    at_ms: TInteger;
    line: TString;
  }
> = protein("LogLine", {
  instance_id: t.string(),
  stream: t.enum("stdout", "stderr"),
  at_ms: t.u64(),
  line: t.string(),
});

export const Logs: Protein<{ lines: TArray<(typeof LogLine)["schema"]> }> = protein("Logs", {
  lines: t.list(LogLine),
});

/** The one-per-host manager: registry, discovery, health and the lifecycle of cell processes. */
export const Nucleus: Service<{
  register: Method<typeof RegisterRequest, typeof Lease>;
  heartbeat: Method<typeof HeartbeatRequest, typeof HeartbeatResponse>;
  deregister: Method<typeof LeaseRequest, typeof Empty>;
  discover: Method<typeof DiscoverRequest, typeof Instances>;
  watch: Method<typeof WatchRequest, typeof Instances>;
  health: Method<typeof Empty, typeof HealthReport>;
  topology: Method<typeof Empty, typeof Topology>;
  deploy: Method<typeof DeployRequest, typeof Deployment>;
  scale: Method<typeof ScaleRequest, typeof Deployment>;
  stop: Method<typeof CellRequest, typeof Deployment>;
  deployments: Method<typeof Empty, typeof Deployments>;
  logs: Method<typeof LogsRequest, typeof Logs>;
  coordinate: Method<typeof Empty, typeof HostCoordinate>;
  set_coordinate: Method<typeof SetCoordinateRequest, typeof Empty>;
}> = service({
  /** Registers an instance and grants it a lease. */
  register: method(RegisterRequest, Lease),
  /** Keeps a lease alive; `NOT_FOUND` for an unknown or expired lease (register again). */
  heartbeat: method(HeartbeatRequest, HeartbeatResponse, { idempotent: true }),
  /** Removes an instance. */
  deregister: method(LeaseRequest, Empty, { idempotent: true }),
  /** Healthy instances of a cell (all of them with `all`). */
  discover: method(DiscoverRequest, Instances, { idempotent: true }),
  /** Waits until the registry changes past `since`, then answers like `discover`. */
  watch: method(WatchRequest, Instances, { idempotent: true }),
  /** Health per cell and per host. */
  health: method(Empty, HealthReport, { idempotent: true }),
  /** Every host and its instances. */
  topology: method(Empty, Topology, { idempotent: true }),
  /** Starts `instances` supervised processes of a cell module. */
  deploy: method(DeployRequest, Deployment),
  /** Changes how many instances a deployed cell runs. */
  scale: method(ScaleRequest, Deployment),
  /** Stops a deployed cell and forgets its deployment. */
  stop: method(CellRequest, Deployment),
  /** Deployments and the state of their processes. */
  deployments: method(Empty, Deployments, { idempotent: true }),
  /** Captured stdout/stderr of a deployed cell's instances. */
  logs: method(LogsRequest, Logs, { idempotent: true }),
  /** This host's network coordinate, as its Vivaldi cell last set it. */
  coordinate: method(Empty, HostCoordinate, { idempotent: true }),
  /** Sets this host's network coordinate (the Vivaldi cell does, as it measures). */
  set_coordinate: method(SetCoordinateRequest, Empty, { idempotent: true }),
});

/** The nucleus service's type, for clients that import only types. */
export type Nucleus = typeof Nucleus;
