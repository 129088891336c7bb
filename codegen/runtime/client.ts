// Runtime of generated TypeScript clients, part 2: connections, discovery and the client base
// class that generated clients extend. See wire.ts for part 1.
import { connect as netConnect, type Socket } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { env } from "node:process";
import {
  CellError,
  codeFromNumber,
  decodeFrame,
  DEFAULT_MAX_FRAME,
  encode,
  type Frame,
  frameBytes,
  FrameReader,
  frameToArray,
} from "./wire.ts";

/** The per-call deadline used unless a call or the client sets one, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** How this client introduces itself in its HELLO. */
export const AGENT = "cell-ts-generated/0.1.0";

/** Options of a generated client. */
export interface ClientOptions {
  /** Connect to this Unix socket instead of discovering the cell. */
  socket?: string;
  /**
   * The Cell home whose `run/` holds the nucleus's and the cells' sockets.
   *
   * @default {$CELL_HOME, else ~/.cell}
   */
  home?: string;
  /**
   * Deadline of each call in milliseconds; 0 for none.
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /** Fail with `FAILED_PRECONDITION` when the cell's schema hash differs from the generated one. */
  strictSchema?: boolean;
  /** Free-form identity sent in HELLO (`peer`). */
  peer?: string;
}

/** Options of one call. */
export interface CallOptions {
  /** This call's deadline in milliseconds (0: none), instead of the client's. */
  timeoutMs?: number;
  /** Aborting it cancels the call: it fails with `CANCELLED` and the server is told. */
  signal?: AbortSignal;
  /** Sent with the request (trace ids, tenant, ...). */
  metadata?: Record<string, string>;
}

/** `$CELL_HOME`, else `~/.cell`. */
export function cellHome(): string {
  return env.CELL_HOME || join(homedir(), ".cell");
}

/** `Promise.withResolvers()`, which Node before 22 lacks. */
function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: CellError): void;
}

/** A call that the server provably did not process (above a GOAWAY's `last_id`, or never sent). */
class NotProcessed extends CellError {}

/** One connection to one cell over a Unix socket. */
class Connection {
  readonly #socket: Socket;
  readonly #reader = new FrameReader();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: CellError | undefined;
  #hello = deferred<Record<string, unknown>>();
  peerMaxFrame = DEFAULT_MAX_FRAME;
  draining = false;

  readonly path: string;

  // No parameter properties here or in wire.ts: Node's type stripping cannot run them.
  constructor(path: string, info: Record<string, unknown>) {
    this.path = path;
    this.#socket = netConnect(path);
    this.#hello.promise.catch(() => {});
    this.#socket.on("connect", () => this.send([0, 1, info]));
    this.#socket.on("data", (chunk: Uint8Array) => this.#receive(chunk));
    this.#socket.on("error", (e: Error) => {
      this.#fail(new CellError("UNAVAILABLE", `Cannot reach ${path}: ${e.message}`, { cause: e }));
    });
    this.#socket.on("close", () => {
      this.#fail(new CellError("UNAVAILABLE", `Connection to ${path} closed`));
    });
  }

  /** The server's HELLO info, once it has answered. */
  hello(): Promise<Record<string, unknown>> {
    return this.#hello.promise;
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  send(body: unknown[]): void {
    if (this.#closed) throw new NotProcessed(this.#closed.code, this.#closed.message);
    const bytes = encode(body);
    if (bytes.length > this.peerMaxFrame) {
      throw new CellError(
        "RESOURCE_EXHAUSTED",
        `Frame of ${bytes.length} bytes is over the cell's limit of ${this.peerMaxFrame} bytes`,
      );
    }
    this.#socket.write(frameBytes(bytes));
  }

  call(
    method: string,
    payload: unknown,
    timeoutMs: number,
    options: CallOptions,
  ): Promise<unknown> {
    if (this.draining) throw new NotProcessed("UNAVAILABLE", "The cell is shutting down");
    const id = this.#allocate();
    const { promise, resolve, reject } = deferred<unknown>();
    const timeout = Math.max(0, Math.ceil(timeoutMs));
    const body = [1, id, method, payload, timeout, ...(options.metadata ? [options.metadata] : [])];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      this.#cancel(id, new CellError("CANCELLED", `Call of ${method} cancelled`));
    };
    const done = () => {
      this.#pending.delete(id);
      if (timer !== undefined) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      if (this.#pending.size === 0) this.#socket.unref();
    };
    this.#pending.set(id, {
      resolve: (v) => (done(), resolve(v)),
      reject: (e) => (done(), reject(e)),
    });
    if (options.signal?.aborted) {
      this.#pending.get(id)!.reject(new CellError("CANCELLED", `Call of ${method} cancelled`));
      return promise;
    }
    try {
      this.send(body);
    } catch (e) {
      this.#pending.get(id)?.reject(CellError.from(e));
      return promise;
    }
    this.#socket.ref();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (timeout > 0) {
      timer = setTimeout(() => {
        this.#cancel(
          id,
          new CellError("DEADLINE_EXCEEDED", `Call of ${method} took over ${timeout} ms`),
        );
      }, timeout);
    }
    return promise;
  }

  close(): void {
    this.#fail(new CellError("UNAVAILABLE", "Client closed"));
  }

  #allocate(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.#pending.has(id)) return id;
    }
  }

  #cancel(id: number, error: CellError): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    pending.reject(error);
    try {
      this.send([4, id]);
    } catch {
      // Closed already: nothing to tell the server.
    }
  }

  #fail(error: CellError): void {
    if (this.#closed) return;
    this.#closed = error;
    this.#hello.reject(error);
    for (const pending of [...this.#pending.values()]) pending.reject(error);
    this.#socket.destroy();
  }

  #receive(chunk: Uint8Array): void {
    this.#reader.push(chunk);
    try {
      for (let body = this.#reader.next(); body !== null; body = this.#reader.next()) {
        const frame = decodeFrame(body);
        if (frame !== null) this.#handle(frame);
      }
    } catch (e) {
      this.#fail(CellError.from(e));
    }
  }

  #handle(frame: Frame): void {
    switch (frame.kind) {
      case "HELLO": {
        const max = frame.info.max_frame;
        if (typeof max === "number" && max > 0) this.peerMaxFrame = max;
        if (this.#pending.size === 0) this.#socket.unref();
        this.#hello.resolve(frame.info);
        return;
      }
      case "RESPONSE":
        this.#pending.get(frame.id)?.resolve(frame.payload);
        return;
      case "ERROR": {
        const error = new CellError(codeFromNumber(frame.code), frame.message, {
          details: frame.details,
        });
        if (frame.id === 0) this.#fail(error);
        else this.#pending.get(frame.id)?.reject(error);
        return;
      }
      case "GOAWAY":
        this.draining = true;
        for (const [id, pending] of [...this.#pending]) {
          if (id > frame.last_id) {
            pending.reject(new NotProcessed("UNAVAILABLE", `The cell is shutting down`));
          }
        }
        if (this.#pending.size === 0) this.close();
        return;
      case "PING":
        this.send(frameToArray({ kind: "PONG", id: frame.id }));
        return;
      default:
        return;
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The base of generated clients: connects, calls by method name, retries what is safe to. */
export class CellClient {
  readonly #cell: string;
  readonly #schemaHash: string;
  readonly #options: ClientOptions;
  #connection: Promise<Connection> | undefined;
  #serverHash: string | undefined;

  /** A client of `cell`, built for the schema with hash `schemaHash`. */
  constructor(cell: string, schemaHash: string, options: ClientOptions = {}) {
    this.#cell = cell;
    this.#schemaHash = schemaHash;
    this.#options = options;
  }

  /** The schema hash the cell announced, once connected. */
  get serverSchemaHash(): string | undefined {
    return this.#serverHash;
  }

  /** Connects now rather than at the first call; fails like a call would. */
  async connect(): Promise<void> {
    await this.#connected();
  }

  /** Closes the connection; calls in flight fail with `UNAVAILABLE`. */
  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) (await connection.catch(() => undefined))?.close();
  }

  /** Calls `method` with `payload`; what generated methods do. */
  async call(
    method: string,
    payload: unknown,
    options: CallOptions = {},
    idempotent = false,
  ): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
    for (let attempt = 1;; attempt++) {
      try {
        const connection = await this.#connected();
        const left = deadline === Infinity ? 0 : Math.max(1, deadline - Date.now());
        return await connection.call(method, payload, left, options);
      } catch (e) {
        const error = CellError.from(e);
        const retry = error.code === "UNAVAILABLE" && (idempotent || error instanceof NotProcessed);
        if (!retry || attempt >= 3 || Date.now() + 25 * 2 ** attempt > deadline) {
          throw error instanceof NotProcessed ? new CellError(error.code, error.message) : error;
        }
        await sleep(25 * 2 ** (attempt - 1));
      }
    }
  }

  #connected(): Promise<Connection> {
    const current = this.#connection;
    if (current) {
      return current.then((c) => c.closed || c.draining ? this.#reconnect(current) : c, () => {
        return this.#reconnect(current);
      });
    }
    return this.#reconnect(undefined);
  }

  #reconnect(stale: Promise<Connection> | undefined): Promise<Connection> {
    if (this.#connection !== stale) return this.#connected();
    const next = this.#open();
    this.#connection = next;
    next.catch(() => {
      if (this.#connection === next) this.#connection = undefined;
    });
    return next;
  }

  async #open(): Promise<Connection> {
    const home = this.#options.home ?? cellHome();
    const candidates = this.#options.socket !== undefined
      ? [this.#options.socket]
      : [...await discover(this.#cell, home), join(home, "run", `${this.#cell}.sock`)];
    let last: CellError | undefined;
    for (const path of candidates) {
      const connection = new Connection(path, this.#hello());
      try {
        const info = await connection.hello();
        this.#serverHash = typeof info.schema_hash === "string" ? info.schema_hash : undefined;
        if (this.#options.strictSchema && this.#serverHash !== this.#schemaHash) {
          connection.close();
          throw new CellError(
            "FAILED_PRECONDITION",
            `Cell '${this.#cell}' serves schema ${this.#serverHash}, this client was generated ` +
              `for ${this.#schemaHash}: regenerate it with 'cell generate ${this.#cell}'`,
          );
        }
        return connection;
      } catch (e) {
        last = CellError.from(e);
        if (last.code === "FAILED_PRECONDITION") throw last;
      }
    }
    throw new CellError(
      "UNAVAILABLE",
      `Cell '${this.#cell}' is not running in ${home} (${last?.message}): start it, or pass ` +
        `the socket option`,
      { cause: last },
    );
  }

  #hello(): Record<string, unknown> {
    const info: Record<string, unknown> = {
      schema_hash: this.#schemaHash,
      max_frame: DEFAULT_MAX_FRAME,
      agent: AGENT,
    };
    if (this.#options.peer !== undefined) info.peer = this.#options.peer;
    return info;
  }
}

/** Socket paths of the cell's usable instances as the nucleus knows them; none without one. */
export async function discover(cell: string, home: string = cellHome()): Promise<string[]> {
  if (env.CELL_NUCLEUS === "0" || cell === "nucleus") return [];
  const nucleus = new Connection(join(home, "run", "nucleus.sock"), { agent: AGENT });
  try {
    await nucleus.hello();
    const found = await nucleus.call("discover", { cell, all: true }, 2000, {}) as {
      instances?: { health?: string; endpoints?: { transport?: string; address?: string }[] }[];
    };
    return (found.instances ?? [])
      .filter((i) => i.health === "healthy" || i.health === "starting")
      .flatMap((i) => i.endpoints ?? [])
      .filter((e) => e.transport === "uds" && typeof e.address === "string")
      .map((e) => e.address as string);
  } catch {
    return [];
  } finally {
    nucleus.close();
  }
}
