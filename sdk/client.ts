/**
 * Calling cells: {@linkcode connect} returns a client whose methods are typed from the service
 * definition (import only its type, as with tRPC); {@linkcode connectDynamic} builds one from
 * the cell's schema at run time.
 *
 * Every call has a deadline, can be cancelled with an `AbortSignal` (the server's handler sees
 * its signal abort), shares one connection with every other call in flight, and is retried on
 * `UNAVAILABLE` only where that is safe. When the nucleus knows several instances of the cell,
 * calls are spread over them (`balance`), the client follows instances as they come and go,
 * and a retry goes to another instance than the one that failed.
 *
 * @module
 */
import { CellError } from "./errors.ts";
import type { RequestOf, ResponseOf, Service } from "./service.ts";
import type { CellSchema } from "./schema.ts";
import type { Transport } from "./transport.ts";
import { checkCellName, RESERVED_METHOD_NAMES, SCHEMA_METHOD } from "./_names.ts";
import { ClientCore } from "./_client_core.ts";
import type { Balance } from "./_balancer.ts";

export { DEFAULT_TIMEOUT_MS } from "./_client_core.ts";
export type { Balance } from "./_balancer.ts";

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
   * adds which methods are idempotent (so they are retried), a schema-hash check, and codecs
   * compiled from the proteins: requests are written and answers read by code made for their
   * fields (on the shared-memory ring, about half the codec's time per call). With it, only a
   * request's declared fields are sent, as servers always do with answers.
   */
  service?: S;
  /** Where to connect, overriding discovery; with `transport`. */
  address?: string;
  /**
   * The transport: `"uds"`, `"inproc"`, `"shm"` (the shared-memory ring beside the cell's
   * socket, or at `address`) or an adapter. Without it, a cell served in this process is called
   * in-process, one on this host over the ring when both sides can use it, else over its socket.
   * @default {"uds" for an address}
   */
  transport?: "uds" | "inproc" | "shm" | Transport;
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
   * Attempts of a retryable call, the first included. Retries go to another instance when the
   * cell has several.
   * @default {"3, or the number of instances + 2 when there are more than one"}
   */
  maxAttempts?: number;
  /**
   * How calls are spread over the instances of a cell that the nucleus knows:
   * `"least-outstanding"` sends each call to the instance with the fewest calls in flight from
   * this client (ties take turns), `"round-robin"` takes turns, `"nearest"` prefers the
   * instances with the lowest round-trip time (measured from this client's calls, else
   * estimated from the Vivaldi coordinates the nucleus reports) and spreads calls over the
   * nearest few by RTT × calls in flight, as least-outstanding does when no RTT is known.
   * @default {"least-outstanding"}
   */
  balance?: Balance;
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
  /** The nucleus's id of the instance in use (the last one called), when it was discovered. */
  readonly instance?: string;
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

const NOT_METHODS = RESERVED_METHOD_NAMES;

function makeProxy(core: ClientCore, extra: Record<string, unknown> = {}): unknown {
  const helpers: Record<string | symbol, unknown> = {
    $call: (m: string, p: unknown, o?: CallOptions) => core.call(m, p, o),
    $schema: (o?: CallOptions) => core.call(SCHEMA_METHOD, {}, { idempotent: true, ...o }),
    $ping: (o?: CallOptions) => core.ping(o),
    $close: () => core.close(),
    [Symbol.asyncDispose]: () => core.close(),
    ...extra,
  };
  // The client is a plain object whose prototype is a proxy: a method's first use goes through
  // the proxy, which makes it an own (non-enumerable) property of the client, so that every
  // later call is an ordinary property load (~4 ns, where a proxy trap costs ~20 ns: measured
  // on the call path of the shared-memory ring).
  const client = Object.create(
    new Proxy(Object.create(null), {
      get(_target, prop) {
        if (prop === "$info") return core.info;
        if (prop in helpers) return helpers[prop];
        if (typeof prop !== "string" || NOT_METHODS.has(prop) || prop.startsWith("$")) {
          return undefined;
        }
        const fn = (request: unknown, options?: CallOptions) => core.call(prop, request, options);
        Object.defineProperty(client, prop, { value: fn, enumerable: false });
        return fn;
      },
    }),
  );
  return client;
}

/**
 * Connects to the cell `name` and returns a client typed from its service definition, the
 * equivalent of the seed's `cell_remote!(my_service = "my-service")`. The cell is found in
 * this process first, then through the nucleus (every healthy instance it knows, followed as
 * they come and go, calls spread over them by `balance`), then at
 * `$CELL_HOME/run/<name>.sock`; `address` overrides all that. Rejects with `UNAVAILABLE` when
 * the cell cannot be reached.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
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
 * assert.ok(a === 42);
 * await server.shutdown();
 * ```
 */
export async function connect<S extends Service = Service>(
  name: string,
  options: ConnectOptions<S> = {},
): Promise<Client<S>> {
  checkCellName(name);
  const core = new ClientCore(name, options);
  await core.open();
  return makeProxy(core) as Client<S>;
}

/**
 * Connects to the cell `name` and builds a client from the schema it serves: for tools, and for
 * code that has no type to import. Calling a method the cell does not have fails with
 * `UNIMPLEMENTED` before anything is sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectDynamic, method, protein, serve, service, t } from "@cell/sdk";
 * const Num = protein("Num", { n: t.i32() });
 * const Math2 = service({ double: method(Num, Num) });
 * const server = await serve("doc-math", Math2.implement({ double: ({ n }) => ({ n: 2 * n }) }), {
 *   socket: false,
 *   handleSignals: false,
 * });
 * const client = await connectDynamic("doc-math");
 * assert.ok(client.$methods.includes("double"));
 * // Methods are properties (`client.double(...)`; add `!` under noUncheckedIndexedAccess)
 * // or calls by name:
 * const result = await client.$call("double", { n: 21 }) as { n: number };
 * assert.ok(result.n === 42);
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
