/**
 * Serving a cell: {@linkcode serve} listens on the in-process transport and on a Unix socket,
 * validates every request and response against the proteins, runs handlers with a
 * {@linkcode CallContext}, and drains gracefully on SIGINT/SIGTERM.
 *
 * @module
 */
import { CellError } from "./errors.ts";
import type { CallContext, PeerInfo } from "./context.ts";
import type { Frame, HelloInfo, MalformedFrame, RequestFrame } from "./protocol.ts";
import { DEFAULT_MAX_FRAME, FrameKind, PROTOCOL_VERSION } from "./protocol.ts";
import type { Implementation, Method } from "./service.ts";
import { type CellSchema, schemaOf } from "./schema.ts";
import { withDocs } from "./tsdoc.ts";
import type { Connection, Listener, Transport } from "./transport.ts";
import { inprocTransport } from "./inproc.ts";
import { udsTransport } from "./uds.ts";
import { socketPath } from "./home.ts";
import { unwatchSignals, watchSignals } from "./_signals.ts";
import { AGENT, checkCellName } from "./_names.ts";
import { DeadlineTimer } from "./_deadlines.ts";

/** Name of the built-in method that returns the cell's schema. */
export const SCHEMA_METHOD = "cell.schema";

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
   * @default {"$CELL_HOME/run/<name>.sock"}
   */
  socket?: string | false;
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

class ServerCall implements CallContext {
  readonly cell: string;
  readonly method: string;
  readonly deadline: number;
  readonly peer: PeerInfo;
  readonly metadata: Readonly<Record<string, string>>;
  #controller: AbortController | undefined;
  #reason: CellError | undefined;
  done = false;

  constructor(cell: string, frame: RequestFrame, peer: PeerInfo) {
    this.cell = cell;
    this.method = frame.method;
    this.deadline = frame.timeoutMs > 0 ? Date.now() + frame.timeoutMs : Infinity;
    this.peer = peer;
    this.metadata = frame.metadata ?? EMPTY;
  }

  // Most handlers never look at the signal: create it on first use.
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#reason) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: CellError): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  finish(): void {
    this.done = true;
  }
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

interface Dispatch {
  method: Method;
  handler: (request: never, context: CallContext) => unknown;
}

class Session {
  readonly #server: CellServer;
  readonly #conn: Connection;
  readonly #calls = new Map<number, ServerCall>();
  #peer: PeerInfo;
  #greeted = false;
  #lastId = 0;
  #draining = false;
  #drained: (() => void) | undefined;

  constructor(server: CellServer, conn: Connection) {
    this.#server = server;
    this.#conn = conn;
    this.#peer = { transport: conn.transport };
    conn.start({
      onFrame: (frame) => this.#onFrame(frame),
      onMalformed: (m) => this.#onMalformed(m),
      onClose: () => this.#onClose(),
    });
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  /** Sends GOAWAY; resolves when no call is in flight any more. */
  goAway(): Promise<void> {
    this.#draining = true;
    this.#trySend({
      kind: FrameKind.GOAWAY,
      lastId: this.#lastId,
      message: `Cell '${this.#server.name}' is shutting down`,
    });
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained = resolve);
  }

  /** Fails the calls whose deadline passed; returns the earliest deadline still ahead. */
  sweep(now: number): number {
    let next = Infinity;
    for (const [id, call] of this.#calls) {
      if (call.deadline <= now) {
        const error = new CellError(
          "DEADLINE_EXCEEDED",
          `The caller's deadline passed before '${call.method}' finished`,
        );
        call.abort(error);
        call.finish();
        this.#forget(id);
        this.#sendError(id, error);
      } else if (call.deadline < next) {
        next = call.deadline;
      }
    }
    return next;
  }

  /** Cancels what is still running and closes the connection. */
  terminate(): void {
    const reason = new CellError(
      "UNAVAILABLE",
      `Cell '${this.#server.name}' shut down before the call finished: retry elsewhere`,
    );
    for (const [id, call] of this.#calls) {
      call.abort(reason);
      call.finish();
      this.#sendError(id, reason);
    }
    this.#calls.clear();
    this.#conn.close();
  }

  #onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.REQUEST:
        return this.#onRequest(frame);
      case FrameKind.HELLO:
        return this.#onHello(frame.version, frame.info);
      case FrameKind.CANCEL: {
        const call = this.#calls.get(frame.id);
        if (call) {
          call.abort(new CellError("CANCELLED", "The caller cancelled the call"));
          call.finish();
          this.#forget(frame.id);
        }
        return;
      }
      case FrameKind.PING:
        return this.#trySend({ kind: FrameKind.PONG, id: frame.id });
      default:
        return; // RESPONSE, ERROR, PONG and GOAWAY mean nothing from a client.
    }
  }

  #onHello(version: number, info: HelloInfo): void {
    if (this.#greeted) return; // HELLO is said once; a repeat changes nothing.
    if (version !== PROTOCOL_VERSION) {
      this.#sendError(
        0,
        new CellError(
          "FAILED_PRECONDITION",
          `Protocol version ${version} is not supported; this cell speaks version ` +
            `${PROTOCOL_VERSION}: upgrade the client`,
        ),
      );
      this.#conn.close();
      return;
    }
    this.#greeted = true;
    if (typeof info.max_frame === "number" && info.max_frame > 0) {
      this.#conn.peerMaxFrame = info.max_frame;
    }
    this.#peer = {
      transport: this.#conn.transport,
      ...(typeof info.peer === "string" ? { id: info.peer } : {}),
      ...(typeof info.agent === "string" ? { agent: info.agent } : {}),
    };
    this.#trySend({
      kind: FrameKind.HELLO,
      version: PROTOCOL_VERSION,
      info: {
        cell: this.#server.name,
        schema_hash: this.#server.schema.hash,
        max_frame: this.#server.maxFrame,
        agent: AGENT,
      },
    });
  }

  #onRequest(frame: RequestFrame): void {
    const id = frame.id;
    if (id > this.#lastId) this.#lastId = id;
    if (!this.#greeted) {
      return this.#sendError(
        id,
        new CellError("FAILED_PRECONDITION", "The first frame must be HELLO: see docs/protocol.md"),
      );
    }
    if (this.#draining) {
      return this.#sendError(
        id,
        new CellError(
          "UNAVAILABLE",
          `Cell '${this.#server.name}' is shutting down: retry on another instance`,
        ),
      );
    }
    if (this.#calls.has(id)) {
      return this.#sendError(
        id,
        new CellError("INVALID_ARGUMENT", `Call id ${id} is already in flight: use a fresh id`),
      );
    }
    if (this.#calls.size >= this.#server.maxConcurrentCalls) {
      return this.#sendError(
        id,
        new CellError(
          "RESOURCE_EXHAUSTED",
          `Too many calls in flight on one connection (limit ${this.#server.maxConcurrentCalls}): ` +
            "wait for some to finish",
        ),
      );
    }
    const dispatch = this.#server.dispatch(frame.method);
    if (!dispatch) {
      if (frame.method === SCHEMA_METHOD) return void this.#serveSchema(id);
      return this.#sendError(
        id,
        new CellError(
          "UNIMPLEMENTED",
          `Cell '${this.#server.name}' has no method '${frame.method}'; it has ` +
            `${this.#server.methodList}: see 'cell schema ${this.#server.name}'`,
        ),
      );
    }
    const request = dispatch.method.request;
    if (!request.check(frame.payload)) {
      try {
        request.validate(frame.payload);
      } catch (e) {
        return this.#sendError(id, e as CellError);
      }
    }
    const call = new ServerCall(this.#server.name, frame, this.#peer);
    this.#calls.set(id, call);
    if (call.deadline !== Infinity) this.#server.deadlines.watch(call.deadline);
    let result: unknown;
    try {
      result = dispatch.handler(frame.payload as never, call);
    } catch (e) {
      return this.#fail(id, call, e);
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.#succeed(id, call, dispatch, value),
        (e) => this.#fail(id, call, e),
      );
    } else {
      this.#succeed(id, call, dispatch, result);
    }
  }

  #succeed(id: number, call: ServerCall, dispatch: Dispatch, value: unknown): void {
    if (call.done) return;
    call.finish();
    this.#forget(id);
    // A call whose deadline passed was already answered by the deadline sweep, and is `done`.
    const response = dispatch.method.response;
    if (!response.check(value)) {
      const errors = response.errors(value);
      const first = errors[0];
      return this.#sendError(
        id,
        new CellError(
          "INTERNAL",
          `Handler '${call.method}' returned an invalid ${response.name}` +
            (first ? ` (${first.path || "(value)"}: ${first.message})` : "") +
            ": this is a bug in the cell",
          { details: { protein: response.name, errors } },
        ),
      );
    }
    try {
      this.#conn.send({ kind: FrameKind.RESPONSE, id, payload: value });
    } catch (e) {
      this.#sendError(id, CellError.from(e));
    }
  }

  #fail(id: number, call: ServerCall, error: unknown): void {
    if (call.done) return;
    call.finish();
    this.#forget(id);
    if (!(error instanceof CellError)) this.#server.onError(error, call.method);
    this.#sendError(id, CellError.from(error));
  }

  async #serveSchema(id: number): Promise<void> {
    try {
      const schema = await withDocs(this.#server.schema);
      this.#conn.send({ kind: FrameKind.RESPONSE, id, payload: schema });
    } catch (e) {
      this.#sendError(id, CellError.from(e));
    }
  }

  #forget(id: number): void {
    this.#calls.delete(id);
    if (this.#calls.size === 0 && this.#drained) this.#drained();
  }

  #onMalformed(m: MalformedFrame): void {
    this.#sendError(m.id ?? 0, m.error);
  }

  #onClose(): void {
    const reason = new CellError("CANCELLED", "The caller disconnected");
    for (const call of this.#calls.values()) {
      call.abort(reason);
      call.finish();
    }
    this.#calls.clear();
    this.#drained?.();
    this.#server.forget(this);
  }

  #sendError(id: number, error: CellError): void {
    this.#trySend({
      kind: FrameKind.ERROR,
      id,
      code: error.codeNumber,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
    });
  }

  #trySend(frame: Frame): void {
    if (this.#conn.closed) return;
    try {
      this.#conn.send(frame);
    } catch (e) {
      // The only frame that can be too large is an error's details: send it without them.
      if (frame.kind === FrameKind.ERROR && frame.details !== undefined) {
        const { details: _details, ...bare } = frame;
        this.#trySend(bare);
      } else if (!(e instanceof CellError && e.code === "UNAVAILABLE")) {
        throw e;
      }
    }
  }
}

class CellServer implements Server {
  readonly name: string;
  readonly schema: CellSchema;
  readonly maxFrame: number;
  readonly maxConcurrentCalls: number;
  readonly methodList: string;
  readonly finished: Promise<void>;
  readonly onError: (error: unknown, method: string) => void;
  endpoints: string[] = [];
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

  constructor(name: string, implementation: Implementation, options: ServeOptions) {
    this.name = name;
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
        { method, handler: handlers[m]!.bind(handlers) },
      ]),
    );
    this.methodList = [...this.#dispatch.keys()].map((m) => `'${m}'`).join(", ") || "no methods";
    this.finished = new Promise((resolve) => this.#finish = resolve);
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

/**
 * Serves `implementation` as the cell `name`: in this process, and on the Unix socket
 * `$CELL_HOME/run/<name>.sock` unless told otherwise. Resolves once it listens everywhere.
 *
 * @example
 * ```ts
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
 * console.assert((await client.greet({ name: "World" })).greeting === "Hello, World!");
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
  const server = new CellServer(name, implementation, options);
  try {
    if (options.inproc ?? true) await server.listen(inprocTransport, name);
    const socket = options.socket ?? socketPath(name, options.home);
    if (socket !== false) await server.listen(udsTransport, socket);
    for (const e of options.endpoints ?? []) await server.listen(e.transport, e.address);
  } catch (e) {
    await server.shutdown({ drainTimeoutMs: 0 });
    throw e;
  }
  if (options.handleSignals ?? true) watchSignals(server);
  return server;
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x instanceof Promise ||
    (typeof x === "object" && x !== null && typeof (x as PromiseLike<unknown>).then === "function");
}
