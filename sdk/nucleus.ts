/**
 * A client of this host's nucleus, the TypeScript twin of the seed's Rust
 * `NucleusClient::connect()` and `register(name, node_id)`: register an instance (and keep it
 * registered), discover and watch instances, read health and topology.
 *
 * `serve()` registers every cell by itself; this is for processes that serve in other ways,
 * and for tools.
 *
 * @module
 */
import type { Infer } from "./protein.ts";
import { type Client, connect } from "./client.ts";
import {
  type CoordinateValue,
  type HealthReport,
  type HostCoordinate,
  type InstanceEndpoint,
  type Instances,
  type Lease,
  Nucleus,
  NUCLEUS_CELL,
  type Topology,
} from "./nucleus_api.ts";
import { socketPath } from "./home.ts";
import { checkCellName } from "./_names.ts";
import { Registration } from "./_registration.ts";

/** Options of {@linkcode NucleusClient.connect}. */
export interface NucleusConnectOptions {
  /**
   * The Cell home whose nucleus to talk to (`<home>/run/nucleus.sock`).
   * @default {"$CELL_HOME, or ~/.cell"}
   */
  home?: string;
  /**
   * Deadline of each call to the nucleus (a `watch` gets its wait on top).
   * @default {5000}
   */
  timeoutMs?: number;
}

/** Options of {@linkcode NucleusClient.register}. */
export interface RegisterOptions {
  /**
   * The instance's id; the nucleus picks one when absent.
   * @default {"$CELL_INSTANCE_ID, or picked by the nucleus"}
   */
  instanceId?: string;
  /**
   * Where the instance can be reached, best first.
   * @default {"the Unix socket $CELL_HOME/run/<name>.sock"}
   */
  endpoints?: Infer<typeof InstanceEndpoint>[];
  /**
   * The instance's process id.
   * @default {Deno.pid}
   */
  pid?: number;
  /** Free-form labels (version, zone, ...). */
  metadata?: Record<string, string>;
  /** Calls in flight, reported with every heartbeat. */
  inFlight?: () => number;
  /**
   * The instance's network coordinate, reported with every heartbeat when it returns one
   * (`@cell/vivaldi`'s `VivaldiAgent` measures it); clients that balance with `"nearest"` and
   * the Vivaldi cell's `route` use it.
   */
  coordinate?: () => CoordinateValue | undefined;
}

/** A registered instance, heartbeating (and re-registering after a nucleus restart) until closed. */
export interface RegisteredInstance extends AsyncDisposable {
  /** The cell it is an instance of. */
  readonly cell: string;
  /** Its id, as given or as the nucleus picked it. */
  readonly instanceId: string;
  /** The current lease; `undefined` while the nucleus is unreachable. */
  readonly lease: Infer<typeof Lease> | undefined;
  /** Stops heartbeating and deregisters. */
  close(): Promise<void>;
}

/** A connection to this host's nucleus. */
export class NucleusClient {
  readonly #client: Client<Nucleus>;
  readonly #home: string | undefined;
  readonly #timeoutMs: number;
  readonly #registrations = new Set<RegisteredInstance>();

  /**
   * Wraps a connected client of the nucleus; {@linkcode NucleusClient.connect} makes both.
   *
   * @example
   * ```ts ignore
   * import { connect, NucleusClient } from "@cell/sdk";
   * import { Nucleus } from "@cell/sdk/nucleus_api";
   * const nucleus = new NucleusClient(await connect<Nucleus>("nucleus", { service: Nucleus }));
   * ```
   */
  constructor(client: Client<Nucleus>, options: NucleusConnectOptions = {}) {
    this.#client = client;
    this.#home = options.home;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /**
   * Connects to the nucleus of `home`; rejects with `UNAVAILABLE` when none runs (start it with
   * `cell nucleus`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CellError, NucleusClient } from "@cell/sdk";
   * import { tempCellHome } from "@cell/sdk/testing";
   *
   * await using _home = await tempCellHome();
   * const error = await NucleusClient.connect().catch((e) => e);
   * assert.ok(error instanceof CellError && error.code === "UNAVAILABLE");
   * ```
   */
  static async connect(options: NucleusConnectOptions = {}): Promise<NucleusClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const client = await connect<Nucleus>(NUCLEUS_CELL, {
      service: Nucleus,
      ...(options.home === undefined ? {} : { home: options.home }),
      timeoutMs,
      connectTimeoutMs: Math.min(timeoutMs, 2000),
    });
    return new NucleusClient(client, options);
  }

  /**
   * Registers an instance of the cell `name` on node `nodeId` and keeps it registered: it
   * heartbeats every lease interval and registers again when the nucleus restarts, until the
   * handle is closed. Rejects with what the nucleus said when the first registration fails.
   *
   * @example
   * ```ts ignore
   * import { NucleusClient } from "@cell/sdk";
   * await using nucleus = await NucleusClient.connect();
   * await using instance = await nucleus.register("my-service", "1");
   * console.log(instance.instanceId);
   * ```
   */
  async register(
    name: string,
    nodeId: string,
    options: RegisterOptions = {},
  ): Promise<RegisteredInstance> {
    checkCellName(name);
    const instanceId = options.instanceId ?? (Deno.env.get("CELL_INSTANCE_ID") || undefined);
    const registration = new Registration(name, {
      ...(this.#home === undefined ? {} : { home: this.#home }),
      nodeId,
      ...(instanceId === undefined ? {} : { instanceId }),
      endpoints: options.endpoints ??
        [{ transport: "uds", address: socketPath(name, this.#home) }],
      ...(options.pid === undefined ? {} : { pid: options.pid }),
      ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
      ...(options.inFlight === undefined ? {} : { inFlight: options.inFlight }),
      ...(options.coordinate === undefined ? {} : { coordinate: options.coordinate }),
    });
    await registration.start({ strict: true });
    const registrations = this.#registrations;
    const handle: RegisteredInstance = {
      cell: name,
      instanceId: registration.lease?.instance_id ?? instanceId ?? "",
      get lease() {
        return registration.lease;
      },
      async close() {
        registrations.delete(handle);
        await registration.close();
      },
      [Symbol.asyncDispose]: () => handle.close(),
    };
    registrations.add(handle);
    return handle;
  }

  /**
   * Healthy instances of `cell` (every instance with `all`).
   *
   * @example
   * ```ts ignore
   * import { NucleusClient } from "@cell/sdk";
   * await using nucleus = await NucleusClient.connect();
   * const { instances } = await nucleus.discover("my-service");
   * console.log(instances.map((i) => i.instance_id));
   * ```
   */
  discover(cell: string, options: { all?: boolean } = {}): Promise<Infer<typeof Instances>> {
    return this.#client.discover({ cell, ...(options.all ? { all: true } : {}) });
  }

  /**
   * Waits until the registry changes past version `since` (or `waitMs` passes), then answers
   * like {@linkcode NucleusClient.discover}; `cell` empty watches every cell.
   *
   * @example
   * ```ts ignore
   * import { NucleusClient } from "@cell/sdk";
   * await using nucleus = await NucleusClient.connect();
   * let { version } = await nucleus.discover("my-service");
   * ({ version } = await nucleus.watch("my-service", version, 30_000)); // next change
   * ```
   */
  watch(cell: string, since: number, waitMs: number): Promise<Infer<typeof Instances>> {
    return this.#client.watch({ cell, since, wait_ms: waitMs }, {
      timeoutMs: waitMs + this.#timeoutMs,
    });
  }

  /**
   * Health per cell and per host.
   *
   * @example
   * ```ts ignore
   * import { NucleusClient } from "@cell/sdk";
   * await using nucleus = await NucleusClient.connect();
   * console.log((await nucleus.health()).status);
   * ```
   */
  health(): Promise<Infer<typeof HealthReport>> {
    return this.#client.health({});
  }

  /**
   * Every host the nucleus knows and its instances.
   *
   * @example
   * ```ts ignore
   * import { NucleusClient } from "@cell/sdk";
   * await using nucleus = await NucleusClient.connect();
   * console.log((await nucleus.topology()).hosts.length);
   * ```
   */
  topology(): Promise<Infer<typeof Topology>> {
    return this.#client.topology({});
  }

  /**
   * This host's network coordinate, when its Vivaldi cell has set one.
   *
   * @example
   * ```ts ignore
   * import { NucleusClient } from "@cell/sdk";
   * await using nucleus = await NucleusClient.connect();
   * console.log((await nucleus.coordinate()).coordinate?.height);
   * ```
   */
  coordinate(): Promise<Infer<typeof HostCoordinate>> {
    return this.#client.coordinate({});
  }

  /**
   * Sets this host's network coordinate; the Vivaldi cell does, as it measures.
   *
   * @example
   * ```ts ignore
   * import { NucleusClient } from "@cell/sdk";
   * await using nucleus = await NucleusClient.connect();
   * await nucleus.setCoordinate({ vec: [0, 0], error: 1.5, adjustment: 0, height: 1e-5 });
   * ```
   */
  async setCoordinate(coordinate: CoordinateValue): Promise<void> {
    await this.#client.set_coordinate({ coordinate: { ...coordinate, vec: [...coordinate.vec] } });
  }

  /** Deregisters what this client registered and closes the connection. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#registrations].map((r) => r.close()));
    await this.#client.$close();
  }

  /** Same as {@linkcode NucleusClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
