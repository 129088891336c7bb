/**
 * Serving a cell: {@linkcode serve} listens on the in-process transport and on a Unix socket,
 * validates every request and response against the proteins, runs handlers with a
 * {@linkcode CallContext}, and drains gracefully on SIGINT/SIGTERM.
 *
 * @module
 */
import { DEFAULT_MAX_FRAME } from "./protocol.ts";
import type { Implementation } from "./service.ts";
import { type CellSchema, schemaOf } from "./schema.ts";
import type { Listener, Transport } from "./transport.ts";
import { inprocTransport } from "./inproc.ts";
import { udsTransport } from "./uds.ts";
import { checkInstanceId, instanceSocketPath, socketPath } from "./home.ts";
import { loadShm, shmAddress } from "./shm.ts";
import { NUCLEUS_CELL } from "./nucleus_api.ts";
import { unwatchSignals, watchSignals } from "./_signals.ts";
import { checkCellName } from "./_names.ts";
import { type Dispatch, Session, type SessionHost } from "./_server_session.ts";
import { payloadDecoder, payloadEncoder } from "./_payload_codec.ts";
import { DeadlineTimer } from "./_deadlines.ts";
import { Registration } from "./_registration.ts";

export { SCHEMA_METHOD } from "./_names.ts";

/** An extra endpoint to listen on, for transports added by other packages. */
export interface Endpoint {
  /** The transport. */
  transport: Transport;
  /** The transport-specific address. */
  address: string;
}

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /**
   * Unix socket to listen on, or `false` for none.
   * @default {"$CELL_HOME/run/<name>@<instanceId>.sock with an instance id, else $CELL_HOME/run/<name>.sock"}
   */
  socket?: string | false;
  /**
   * This instance's id, when several instances of the cell run on the host (the nucleus's
   * supervisor sets `CELL_INSTANCE_ID`): 1 to 64 of `A-Z a-z 0-9 _ . -`.
   * @default {"$CELL_INSTANCE_ID, or none"}
   */
  instanceId?: string;
  /**
   * Register with the nucleus (`$CELL_HOME/run/nucleus.sock`) and heartbeat until shutdown.
   * `"auto"` does so unless `CELL_NUCLEUS=0`, `true` even then; both quietly keep trying while
   * there is no nucleus. `false` never registers, nor does a cell without a socket.
   * @default {"auto"}
   */
  register?: boolean | "auto";
  /** Labels registered with the nucleus (version, zone, ...). */
  metadata?: Record<string, string>;
  /**
   * The Cell home whose `run/` holds the socket, instead of `$CELL_HOME`.
   * @default {"$CELL_HOME, or ~/.cell"}
   */
  home?: string;
  /**
   * Also serve clients in this process without encoding.
   * @default {true}
   */
  inproc?: boolean;
  /** More endpoints (shared-memory ring, QUIC, ...). */
  endpoints?: Endpoint[];
  /**
   * Largest frame body accepted, in bytes.
   * @default {16777216}
   */
  maxFrame?: number;
  /**
   * Calls one connection may have in flight; more fail with `RESOURCE_EXHAUSTED`.
   * @default {1024}
   */
  maxConcurrentCalls?: number;
  /**
   * On shutdown, how long in-flight calls may take to finish before they are cancelled.
   * @default {10000}
   */
  drainTimeoutMs?: number;
  /**
   * Drain and exit on SIGINT/SIGTERM.
   * @default {true}
   */
  handleSignals?: boolean;
  /**
   * Told of every handler failure that is not a `CellError` (a bug, usually).
   * @default {logs to stderr}
   */
  onError?: (error: unknown, method: string) => void;
}

/** A running cell. */
export interface Server {
  /** The cell's name. */
  readonly name: string;
  /** The cell's schema (without docs; `cell.schema` adds them). */
  readonly schema: CellSchema;
  /** Where it listens, as `transport:address`. */
  readonly endpoints: readonly string[];
  /** Calls being handled right now. */
  readonly inFlight: number;
  /** This instance's id, as given or as the nucleus picked it once registered. */
  readonly instanceId: string | undefined;
  /** Resolves once the server has shut down. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting, tells clients to go elsewhere (GOAWAY), lets in-flight calls finish for
   * up to `drainTimeoutMs`, then cancels the rest and closes every connection.
   */
  shutdown(options?: { drainTimeoutMs?: number }): Promise<void>;
  /** Same as {@linkcode Server.shutdown}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

class CellServer implements Server, SessionHost {
  readonly name: string;
  readonly schema: CellSchema;
  readonly maxFrame: number;
  readonly maxConcurrentCalls: number;
  readonly methodList: string;
  readonly finished: Promise<void>;
  readonly onError: (error: unknown, method: string) => void;
  endpoints: string[] = [];
  readonly routes: { transport: string; address: string }[] = [];
  registration: Registration | undefined;
  #instanceId: string | undefined;
  readonly #dispatch: Map<string, Dispatch>;
  readonly #sessions = new Set<Session>();
  readonly #listeners: Listener[] = [];
  readonly #drainTimeoutMs: number;
  readonly deadlines: DeadlineTimer = new DeadlineTimer((now) => {
    let next = Infinity;
    for (const session of this.#sessions) next = Math.min(next, session.sweep(now));
    return next;
  });
  #shutdown: Promise<void> | undefined;
  #finish!: () => void;

  constructor(
    name: string,
    implementation: Implementation,
    options: ServeOptions,
    instanceId: string | undefined,
  ) {
    this.name = name;
    this.#instanceId = instanceId;
    this.schema = schemaOf(name, implementation.definition);
    this.maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    this.maxConcurrentCalls = options.maxConcurrentCalls ?? 1024;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.onError = options.onError ?? ((error, method) => {
      console.error(`cell ${name}: handler '${method}' threw`, error);
    });
    const handlers = implementation.handlers as Record<string, Dispatch["handler"]>;
    this.#dispatch = new Map(
      Object.entries(implementation.definition.methods).map(([m, method]) => [
        m,
        {
          name: m,
          method,
          handler: handlers[m]!.bind(handlers),
          encode: payloadEncoder(method.response),
          decode: payloadDecoder(method.request),
        },
      ]),
    );
    this.methodList = [...this.#dispatch.keys()].map((m) => `'${m}'`).join(", ") || "no methods";
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  get instanceId(): string | undefined {
    return this.registration?.lease?.instance_id ?? this.#instanceId;
  }

  get inFlight(): number {
    let n = 0;
    for (const s of this.#sessions) n += s.inFlight;
    return n;
  }

  dispatch(method: string): Dispatch | undefined {
    return this.#dispatch.get(method);
  }

  async listen(transport: Transport, address: string): Promise<void> {
    const listener = await transport.listen(
      address,
      (conn) => this.#sessions.add(new Session(this, conn)),
      { maxFrame: this.maxFrame },
    );
    this.#listeners.push(listener);
    this.endpoints.push(`${transport.name}:${address}`);
    this.routes.push({ transport: transport.name, address });
  }

  forget(session: Session): void {
    this.#sessions.delete(session);
  }

  shutdown(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.#shutdown ??= this.#drain(options.drainTimeoutMs ?? this.#drainTimeoutMs);
    return this.#shutdown;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #drain(drainTimeoutMs: number): Promise<void> {
    // Out of the registry first, so that clients following the nucleus stop choosing us.
    await this.registration?.close();
    await Promise.allSettled(this.#listeners.map((l) => l.close()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, drainTimeoutMs));
    await Promise.race([Promise.all([...this.#sessions].map((s) => s.goAway())), timeout]);
    clearTimeout(timer);
    for (const session of this.#sessions) session.terminate();
    this.#sessions.clear();
    this.deadlines.stop();
    unwatchSignals(this);
    this.#finish();
  }
}

let shmFailureLogged = false;

/** Also listens on the shared-memory ring next to `socket` when it loads; the socket stays. */
async function listenShm(server: CellServer, socket: string): Promise<void> {
  const shm = await loadShm();
  if (!shm) return;
  try {
    await server.listen(shm, shmAddress(socket));
  } catch (e) {
    if (!shmFailureLogged) {
      shmFailureLogged = true;
      console.error(
        `cell ${server.name}: serving on the Unix socket only, the shared-memory ring failed ` +
          `(${e instanceof Error ? e.message : e}); set CELL_SHM=0 to stop trying`,
      );
    }
  }
}

async function register(
  server: CellServer,
  options: ServeOptions,
  instanceId: string | undefined,
): Promise<void> {
  const wanted = options.register ?? "auto";
  if (wanted === false || server.name === NUCLEUS_CELL) return;
  if (wanted === "auto" && Deno.env.get("CELL_NUCLEUS") === "0") return;
  // Shared memory first: the fastest way in for clients that can use it.
  const endpoints = [
    ...server.routes.filter((r) => r.transport === "shm"),
    ...server.routes.filter((r) => r.transport === "uds"),
  ];
  if (endpoints.length === 0) return;
  server.registration = new Registration(server.name, {
    ...(options.home === undefined ? {} : { home: options.home }),
    ...(instanceId === undefined ? {} : { instanceId }),
    endpoints,
    ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
    inFlight: () => server.inFlight,
  });
  await server.registration.start();
}

/**
 * Serves `implementation` as the cell `name`: in this process, and on the Unix socket
 * `$CELL_HOME/run/<name>.sock` (`<name>@<instanceId>.sock` with `CELL_INSTANCE_ID` set) unless
 * told otherwise, plus the shared-memory ring beside it when this process can use it. Then
 * registers with the nucleus, if one answers, and heartbeats until shutdown. Resolves once it
 * listens everywhere and has tried to register.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, method, protein, serve, service, t } from "@cell/sdk";
 *
 * const Request = protein("Request", { name: t.string() });
 * const Response = protein("Response", { greeting: t.string() });
 * const MyService = service({ greet: method(Request, Response) });
 *
 * const server = await serve(
 *   "doc-greeter",
 *   MyService.implement({ greet: ({ name }) => ({ greeting: `Hello, ${name}!` }) }),
 *   { socket: false, handleSignals: false },
 * );
 * const client = await connect<typeof MyService>("doc-greeter");
 * assert.ok((await client.greet({ name: "World" })).greeting === "Hello, World!");
 * await client.$close();
 * await server.shutdown();
 * ```
 */
export async function serve(
  name: string,
  implementation: Implementation,
  options: ServeOptions = {},
): Promise<Server> {
  checkCellName(name);
  if (implementation?.definition?.kind !== "service") {
    throw new TypeError(
      "serve() takes a service implementation: pass MyService.implement({ ...handlers })",
    );
  }
  const instanceId = options.instanceId ?? (Deno.env.get("CELL_INSTANCE_ID") || undefined);
  if (instanceId !== undefined) checkInstanceId(instanceId);
  const server = new CellServer(name, implementation, options, instanceId);
  try {
    if (options.inproc ?? true) await server.listen(inprocTransport, name);
    const socket = options.socket ??
      (instanceId === undefined
        ? socketPath(name, options.home)
        : instanceSocketPath(name, instanceId, options.home));
    if (socket !== false) {
      await server.listen(udsTransport, socket);
      await listenShm(server, socket);
    }
    for (const e of options.endpoints ?? []) await server.listen(e.transport, e.address);
  } catch (e) {
    await server.shutdown({ drainTimeoutMs: 0 });
    throw e;
  }
  await register(server, options, instanceId);
  if (options.handleSignals ?? true) watchSignals(server);
  return server;
}
