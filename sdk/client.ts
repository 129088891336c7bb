/**
 * Calling cells: {@linkcode connect} returns a client whose methods are typed from the service
 * definition (import only its type, as with tRPC); {@linkcode connectDynamic} builds one from
 * the cell's schema at run time.
 *
 * Every call has a deadline, can be cancelled with an `AbortSignal` (the server's handler sees
 * its signal abort), shares one connection with every other call in flight, and is retried on
 * `UNAVAILABLE` only where that is safe.
 *
 * @module
 */
import { CellError } from "./errors.ts";
import type { RequestFrame } from "./protocol.ts";
import { DEFAULT_MAX_FRAME, FrameKind } from "./protocol.ts";
import type { Methods, RequestOf, ResponseOf, Service } from "./service.ts";
import type { CellSchema } from "./schema.ts";
import { schemaOf } from "./schema.ts";
import type { Transport } from "./transport.ts";
import { inprocTransport } from "./inproc.ts";
import { udsTransport } from "./uds.ts";
import { socketPath } from "./home.ts";
import { AGENT, checkCellName, RESERVED_METHOD_NAMES, SCHEMA_METHOD } from "./_names.ts";
import { Pending, Session, UNPROCESSED, unprocessed } from "./_client_session.ts";
import { DeadlineTimer } from "./_deadlines.ts";

/** Deadline of a call when neither the client nor the call sets one: 10 seconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Options of one call. */
export interface CallOptions {
  /** Milliseconds to wait for the answer, retries included. */
  timeoutMs?: number;
  /** Cancels the call; the server's handler sees its own signal abort. */
  signal?: AbortSignal;
  /** Metadata for this call, merged over the client's. */
  metadata?: Record<string, string>;
  /** Retry on `UNAVAILABLE` even if the definition does not say the method is idempotent. */
  idempotent?: boolean;
}

/** Options of {@linkcode connect}. */
export interface ConnectOptions<S extends Service = Service> {
  /**
   * The service definition. Optional: the type parameter gives the static types; the value
   * adds which methods are idempotent (so they are retried) and a schema-hash check.
   */
  service?: S;
  /** Where to connect, overriding discovery; with `transport`. */
  address?: string;
  /**
   * The transport for `address`: `"uds"`, `"inproc"` or an adapter.
   * @default {"uds"}
   */
  transport?: "uds" | "inproc" | Transport;
  /**
   * The Cell home whose `run/` holds the cell's socket, instead of `$CELL_HOME`.
   * @default {"$CELL_HOME, or ~/.cell"}
   */
  home?: string;
  /**
   * Deadline of each call unless the call says otherwise.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * How long connecting (dial + HELLO) may take.
   * @default {5000}
   */
  connectTimeoutMs?: number;
  /**
   * Attempts of a retryable call, the first included.
   * @default {3}
   */
  maxAttempts?: number;
  /** Metadata sent with every call. */
  metadata?: Record<string, string>;
  /** How this client introduces itself to servers (shown to handlers as `peer.id`). */
  peer?: string;
  /**
   * Fail with `FAILED_PRECONDITION` when the server's schema hash differs from the one of
   * `service` (or `schemaHash`). Off by default: compatible changes (a new method, a new
   * optional field) change the hash too.
   * @default {false}
   */
  strict?: boolean;
  /** Expected schema hash, for `strict` without a `service` value. */
  schemaHash?: string;
  /**
   * Largest frame body accepted from the server.
   * @default {16777216}
   */
  maxFrame?: number;
}

/** What every client has besides its methods. Names start with `$`, which methods cannot. */
export interface ClientHelpers {
  /** Calls `method` by name with an unchecked payload. */
  $call(method: string, payload: unknown, options?: CallOptions): Promise<unknown>;
  /** The cell's schema, with docs. */
  $schema(options?: CallOptions): Promise<CellSchema>;
  /** Round-trip time of a PING, in milliseconds. */
  $ping(options?: CallOptions): Promise<number>;
  /** What the client is connected to. */
  readonly $info: ClientInfo;
  /** Fails calls in flight with `CANCELLED` and closes the connection. */
  $close(): Promise<void>;
  /** Same as `$close`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a client is connected to. */
export interface ClientInfo {
  /** The cell's name. */
  readonly cell: string;
  /** Transport in use. */
  readonly transport: string;
  /** Address in use. */
  readonly address: string;
  /** Schema hash the server announced, once connected. */
  readonly schemaHash: string | undefined;
}

/** A typed client of a service `S`. */
export type Client<S extends Service> =
  & {
    [K in keyof S["methods"]]: (
      request: RequestOf<S["methods"][K]>,
      options?: CallOptions,
    ) => Promise<ResponseOf<S["methods"][K]>>;
  }
  & ClientHelpers;

/** A client built from a schema at run time: any method name, unchecked types. */
export type DynamicClient =
  & Record<string, (request: unknown, options?: CallOptions) => Promise<unknown>>
  & ClientHelpers
  & { readonly $methods: readonly string[] };

const NO_OPTIONS: CallOptions = Object.freeze({});

interface Target {
  transport: Transport;
  address: string;
}

function resolveTarget(name: string, options: ConnectOptions): Target {
  const named = options.transport;
  const transport = typeof named === "object"
    ? named
    : named === "inproc"
    ? inprocTransport
    : named === "uds"
    ? udsTransport
    : undefined;
  if (options.address !== undefined) {
    return { transport: transport ?? udsTransport, address: options.address };
  }
  if (transport === inprocTransport || (!transport && inprocTransport.has(name))) {
    return { transport: inprocTransport, address: name };
  }
  return { transport: transport ?? udsTransport, address: socketPath(name, options.home) };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CellError("CANCELLED", "The call was cancelled"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The machinery behind every client proxy. */
class ClientCore {
  readonly cell: string;
  readonly target: Target;
  readonly #options: ConnectOptions;
  readonly #idempotent: ReadonlySet<string>;
  readonly #expectedHash: string | undefined;
  #session: Session | undefined;
  readonly #sessions = new Set<Session>();
  #connecting: Promise<Session> | undefined;
  #closed = false;
  readonly #deadlines = new DeadlineTimer((now) => this.#sweep(now));

  constructor(cell: string, options: ConnectOptions) {
    this.cell = cell;
    this.#options = options;
    this.target = resolveTarget(cell, options);
    const methods: Methods = options.service?.methods ?? {};
    this.#idempotent = new Set(Object.keys(methods).filter((m) => methods[m]!.idempotent));
    this.#expectedHash = options.schemaHash ??
      (options.service ? schemaOf(cell, options.service).hash : undefined);
  }

  get info(): ClientInfo {
    return {
      cell: this.cell,
      transport: this.target.transport.name,
      address: this.target.address,
      schemaHash: this.#session?.hello?.schema_hash,
    };
  }

  session(): Promise<Session> {
    if (this.#session && !this.#session.conn.closed && !this.#session.draining) {
      return Promise.resolve(this.#session);
    }
    if (this.#closed) {
      return Promise.reject(new CellError("CANCELLED", `Client of '${this.cell}' is closed`));
    }
    return this.#connecting ??= this.#dial().finally(() => this.#connecting = undefined);
  }

  async #dial(): Promise<Session> {
    const timeoutMs = this.#options.connectTimeoutMs ?? 5000;
    const signal = AbortSignal.timeout(timeoutMs);
    const conn = await this.target.transport.dial(this.target.address, {
      signal,
      maxFrame: this.#options.maxFrame ?? DEFAULT_MAX_FRAME,
    });
    const session = new Session(conn, {
      max_frame: this.#options.maxFrame ?? DEFAULT_MAX_FRAME,
      agent: AGENT,
      ...(this.#options.peer === undefined ? {} : { peer: this.#options.peer }),
      ...(this.#expectedHash === undefined ? {} : { schema_hash: this.#expectedHash }),
    }, (gone, closed) => {
      if (this.#session === gone) this.#session = undefined;
      if (closed) this.#sessions.delete(gone);
    });
    this.#sessions.add(session);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) =>
      timer = setTimeout(() =>
        reject(
          new CellError(
            "UNAVAILABLE",
            `'${this.cell}' at ${this.target.address} did not answer HELLO within ${timeoutMs} ms`,
          ),
        ), timeoutMs)
    );
    try {
      await Promise.race([session.greeted, timeout]);
    } catch (e) {
      conn.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    const hash = session.hello?.schema_hash;
    if (this.#options.strict && this.#expectedHash && hash !== this.#expectedHash) {
      conn.close();
      throw new CellError(
        "FAILED_PRECONDITION",
        `'${this.cell}' serves schema ${hash}, not the expected ${this.#expectedHash}: ` +
          "regenerate or update the client, or connect without strict",
      );
    }
    if (this.#closed) {
      conn.close();
      throw new CellError("CANCELLED", `Client of '${this.cell}' is closed`);
    }
    this.#session = session;
    return session;
  }

  call(method: string, payload: unknown, options: CallOptions = NO_OPTIONS): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    // The common case, connected and not cancelled, without an extra promise or closure layer:
    // retries are only set up once an attempt fails.
    return new Promise((resolve, reject) => {
      const fail = (error: CellError) => {
        if (!this.#retryable(error, method, options, deadline)) return reject(error);
        this.#retry(error, method, payload, deadline, options).then(resolve, reject);
      };
      const session = this.#session;
      if (session && !session.conn.closed && !session.draining && !options.signal?.aborted) {
        this.#send(session, method, payload, deadline, timeoutMs, options, resolve, fail);
      } else {
        this.#attempt(method, payload, deadline, options).then(resolve, (e) => fail(e));
      }
    });
  }

  #retryable(error: CellError, method: string, options: CallOptions, deadline: number): boolean {
    return error.code === "UNAVAILABLE" && !this.#closed && Date.now() < deadline &&
      (this.#options.maxAttempts ?? 3) > 1 &&
      ((options.idempotent ?? this.#idempotent.has(method)) || UNPROCESSED.has(error));
  }

  async #retry(
    first: CellError,
    method: string,
    payload: unknown,
    deadline: number,
    options: CallOptions,
  ): Promise<unknown> {
    const maxAttempts = this.#options.maxAttempts ?? 3;
    let error = first;
    for (let attempt = 1;; attempt++) {
      const backoff = Math.min(1000, 25 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      if (
        attempt >= maxAttempts || !this.#retryable(error, method, options, deadline) ||
        Date.now() + backoff >= deadline
      ) {
        throw error;
      }
      await sleep(backoff, options.signal);
      try {
        return await this.#attempt(method, payload, deadline, options);
      } catch (e) {
        error = CellError.from(e);
      }
    }
  }

  /** One attempt, connecting first if needed. */
  #attempt(
    method: string,
    payload: unknown,
    deadline: number,
    options: CallOptions,
  ): Promise<unknown> {
    if (options.signal?.aborted) {
      return Promise.reject(
        new CellError("CANCELLED", `Call '${method}' was cancelled before it was sent`),
      );
    }
    // A call whose connection could not even be made was certainly not processed.
    return this.session().then(
      (s) =>
        new Promise((resolve, reject) =>
          this.#send(s, method, payload, deadline, deadline - Date.now(), options, resolve, reject)
        ),
      (e) => {
        const error = CellError.from(e);
        throw error.code === "UNAVAILABLE" ? unprocessed(error) : error;
      },
    );
  }

  #send(
    session: Session,
    method: string,
    payload: unknown,
    deadline: number,
    remaining: number,
    options: CallOptions,
    resolve: (value: unknown) => void,
    reject: (error: CellError) => void,
  ): void {
    if (remaining <= 0) {
      return reject(
        new CellError("DEADLINE_EXCEEDED", `Call '${method}' ran out of time before it was sent`),
      );
    }
    const id = session.nextId();
    const pending = new Pending(session, id, deadline, method, resolve, reject);
    session.pending.set(id, pending);
    if (options.signal) pending.watch(options.signal);
    this.#deadlines.watch(deadline);
    const frame: RequestFrame = {
      kind: FrameKind.REQUEST,
      id,
      method,
      payload,
      timeoutMs: Math.ceil(remaining),
    };
    if (options.metadata || this.#options.metadata) {
      frame.metadata = { ...this.#options.metadata, ...options.metadata };
    }
    try {
      session.conn.send(frame);
    } catch (e) {
      session.pending.delete(id);
      const error = CellError.from(e);
      pending.reject(error.code === "UNAVAILABLE" ? unprocessed(error) : error);
    }
  }

  #sweep(now: number): number {
    let next = Infinity;
    for (const session of this.#sessions) {
      for (const p of [...session.pending.values()]) {
        if (p.deadline <= now) {
          p.giveUp(
            new CellError(
              "DEADLINE_EXCEEDED",
              `Call '${p.label}' to '${this.cell}' got no answer within its deadline: ` +
                "raise timeoutMs, or check that the cell is healthy",
            ),
          );
        } else if (p.deadline < next) {
          next = p.deadline;
        }
      }
    }
    return next;
  }

  async ping(options: CallOptions = NO_OPTIONS): Promise<number> {
    const session = await this.session();
    const id = session.nextId();
    const started = performance.now();
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    await new Promise<unknown>((resolve, reject) => {
      session.pending.set(id, new Pending(session, id, deadline, "ping", resolve, reject));
      this.#deadlines.watch(deadline);
      session.conn.send({ kind: FrameKind.PING, id });
    });
    return performance.now() - started;
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#deadlines.stop();
    this.#session = undefined;
    const reason = new CellError("CANCELLED", `Client of '${this.cell}' was closed`);
    for (const session of [...this.#sessions]) session.conn.close(reason);
    this.#sessions.clear();
    return Promise.resolve();
  }
}

const NOT_METHODS = RESERVED_METHOD_NAMES;

function makeProxy(core: ClientCore, extra: Record<string, unknown> = {}): unknown {
  const methods = new Map<string, (request: unknown, options?: CallOptions) => Promise<unknown>>();
  const helpers: Record<string | symbol, unknown> = {
    $call: (m: string, p: unknown, o?: CallOptions) => core.call(m, p, o),
    $schema: (o?: CallOptions) => core.call(SCHEMA_METHOD, {}, { idempotent: true, ...o }),
    $ping: (o?: CallOptions) => core.ping(o),
    $close: () => core.close(),
    [Symbol.asyncDispose]: () => core.close(),
    ...extra,
  };
  return new Proxy(Object.create(null), {
    get(_target, prop) {
      if (prop === "$info") return core.info;
      if (prop in helpers) return helpers[prop];
      if (typeof prop !== "string" || NOT_METHODS.has(prop) || prop.startsWith("$")) {
        return undefined;
      }
      let fn = methods.get(prop);
      if (!fn) {
        fn = (request, options) => core.call(prop, request, options);
        methods.set(prop, fn);
      }
      return fn;
    },
  });
}

/**
 * Connects to the cell `name` and returns a client typed from its service definition, the
 * equivalent of the seed's `cell_remote!(my_service = "my-service")`. The cell is found in
 * this process first, then at `$CELL_HOME/run/<name>.sock`; `address` overrides that.
 * Rejects with `UNAVAILABLE` when the cell cannot be reached.
 *
 * @example
 * ```ts
 * import { connect, method, protein, serve, service, t } from "@cell/sdk";
 *
 * const Ask = protein("Ask", { q: t.string() });
 * const Answer = protein("Answer", { a: t.u32() });
 * const Oracle = service({ ask: method(Ask, Answer, { idempotent: true }) });
 * const server = await serve("doc-oracle", Oracle.implement({ ask: () => ({ a: 42 }) }), {
 *   socket: false,
 *   handleSignals: false,
 * });
 *
 * await using oracle = await connect<typeof Oracle>("doc-oracle", { timeoutMs: 2000 });
 * const { a } = await oracle.ask({ q: "life?" });
 * console.assert(a === 42);
 * await server.shutdown();
 * ```
 */
export async function connect<S extends Service = Service>(
  name: string,
  options: ConnectOptions<S> = {},
): Promise<Client<S>> {
  checkCellName(name);
  const core = new ClientCore(name, options);
  await core.session();
  return makeProxy(core) as Client<S>;
}

/**
 * Connects to the cell `name` and builds a client from the schema it serves: for tools, and for
 * code that has no type to import. Calling a method the cell does not have fails with
 * `UNIMPLEMENTED` before anything is sent.
 *
 * @example
 * ```ts
 * import { connectDynamic, method, protein, serve, service, t } from "@cell/sdk";
 * const Num = protein("Num", { n: t.i32() });
 * const Math2 = service({ double: method(Num, Num) });
 * const server = await serve("doc-math", Math2.implement({ double: ({ n }) => ({ n: 2 * n }) }), {
 *   socket: false,
 *   handleSignals: false,
 * });
 * const client = await connectDynamic("doc-math");
 * console.assert(client.$methods.includes("double"));
 * // Methods are properties (`client.double(...)`; add `!` under noUncheckedIndexedAccess)
 * // or calls by name:
 * const result = await client.$call("double", { n: 21 }) as { n: number };
 * console.assert(result.n === 42);
 * await client.$close();
 * await server.shutdown();
 * ```
 */
export async function connectDynamic(
  name: string,
  options: Omit<ConnectOptions, "service"> = {},
): Promise<DynamicClient> {
  checkCellName(name);
  const core = new ClientCore(name, options);
  const schema = await core.call(SCHEMA_METHOD, {}, { idempotent: true }) as CellSchema;
  const known = new Set(schema.methods.map((m) => m.name));
  const idempotent = new Set(schema.methods.filter((m) => m.idempotent).map((m) => m.name));
  const methods: Record<string, unknown> = { $methods: [...known] };
  for (const m of known) {
    methods[m] = (request: unknown, o: CallOptions = {}) =>
      core.call(m, request, { idempotent: idempotent.has(m), ...o });
  }
  const proxy = makeProxy(core, methods) as DynamicClient;
  return new Proxy(proxy, {
    get(target, prop) {
      if (typeof prop === "string" && !prop.startsWith("$") && !known.has(prop)) {
        if (NOT_METHODS.has(prop)) return undefined;
        return () =>
          Promise.reject(
            new CellError(
              "UNIMPLEMENTED",
              `Cell '${name}' has no method '${prop}'; it has ${[...known].join(", ")}`,
            ),
          );
      }
      return Reflect.get(target, prop);
    },
  });
}
