/**
 * The Unix-socket transport: the local default. Frames are written as the wire protocol says,
 * one `write` per batch of frames queued while the previous write was in flight (no added delay
 * for a lone call, coalescing under load).
 *
 * @module
 */
import { dirname } from "node:path";
import { CellError } from "./errors.ts";
import {
  decodeFrameAt,
  DEFAULT_MAX_FRAME,
  encodeFrame,
  type Frame,
  FrameKind,
  FrameReader,
  isMalformed,
} from "./protocol.ts";
import { ensurePrivateDir } from "./home.ts";
import {
  closedConnection,
  type Connection,
  type ConnectionHandlers,
  type DialOptions,
  type Listener,
  type ListenOptions,
  type Transport,
} from "./transport.ts";

/** Longest socket path Linux accepts (`sun_path` is 108 bytes with its terminating NUL). */
const MAX_SOCKET_PATH = 107;

function checkPath(path: string): void {
  const bytes = new TextEncoder().encode(path).length;
  if (bytes > MAX_SOCKET_PATH) {
    throw new CellError(
      "INVALID_ARGUMENT",
      `Socket path '${path}' is ${bytes} bytes, longer than the ${MAX_SOCKET_PATH} Unix allows: ` +
        "set CELL_HOME to a shorter directory",
    );
  }
}

function lost(error: unknown): CellError {
  if (error instanceof CellError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new CellError("UNAVAILABLE", `Connection lost (${message}): the peer may have exited`, {
    cause: error,
  });
}

class UdsConnection implements Connection {
  readonly transport = "uds";
  peerMaxFrame = DEFAULT_MAX_FRAME;
  #conn: Deno.UnixConn;
  #maxFrame: number;
  #handlers: ConnectionHandlers | undefined;
  #closed = false;
  #writing = false;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #flushWaiters: (() => void)[] = [];

  constructor(conn: Deno.UnixConn, maxFrame: number) {
    this.#conn = conn;
    this.#maxFrame = maxFrame;
  }

  get closed(): boolean {
    return this.#closed;
  }

  start(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    this.#readLoop();
  }

  send(frame: Frame): void {
    if (this.#closed) throw closedConnection();
    const bytes = encodeFrame(frame, this.peerMaxFrame);
    if (this.#writing) {
      this.#queue.push(bytes);
      this.#queued += bytes.length;
    } else {
      this.#writing = true;
      this.#write(bytes);
    }
  }

  close(reason?: CellError): void {
    if (this.#closed) return;
    this.#closed = true;
    // Let queued frames (a final ERROR or GOAWAY) reach the peer, then close the socket; a peer
    // that stopped reading gets a second before the socket closes regardless.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<void>((resolve) => timer = setTimeout(resolve, 1000));
    Promise.race([this.#flushed(), gaveUp]).finally(() => {
      clearTimeout(timer);
      try {
        this.#conn.close();
      } catch {
        // Already closed by the peer.
      }
    });
    this.#handlers?.onClose(reason);
  }

  // Writes `buf`, then whatever was queued meanwhile in one write, until nothing is left.
  #write(buf: Uint8Array): void {
    this.#conn.write(buf).then((n) => {
      if (n < buf.length) return this.#write(buf.subarray(n));
      if (this.#queue.length > 0) return this.#write(this.#takeQueue());
      this.#writing = false;
      for (const resolve of this.#flushWaiters.splice(0)) resolve();
    }, (e) => {
      this.#queue = [];
      this.#queued = 0;
      this.#writing = false;
      for (const resolve of this.#flushWaiters.splice(0)) resolve();
      this.close(lost(e));
    });
  }

  /** Resolves once everything queued so far has been written (or the write failed). */
  #flushed(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  #takeQueue(): Uint8Array {
    const queue = this.#queue;
    if (queue.length === 1) {
      this.#queue = [];
      this.#queued = 0;
      return queue[0]!;
    }
    const out = new Uint8Array(this.#queued);
    let offset = 0;
    for (const chunk of queue) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    this.#queue = [];
    this.#queued = 0;
    return out;
  }

  async #readLoop(): Promise<void> {
    const reader = new FrameReader(this.#maxFrame);
    const handlers = this.#handlers!;
    try {
      while (!this.#closed) {
        const n = await this.#conn.read(reader.writable(Math.max(16 * 1024, reader.missing())));
        if (n === null) break;
        reader.commit(n);
        for (let body = reader.next(); body !== null; body = reader.next()) {
          const frame = decodeFrameAt(body, 0, body.length, handlers.decoders);
          if (frame === null) continue;
          if (isMalformed(frame)) handlers.onMalformed(frame);
          else handlers.onFrame(frame);
          if (this.#closed) return;
        }
      }
      this.close(undefined);
    } catch (e) {
      if (this.#closed) return;
      const error = lost(e);
      if (error.code === "RESOURCE_EXHAUSTED") {
        // The stream cannot be resynchronised after an oversized length: say why, then close.
        try {
          this.send({
            kind: FrameKind.ERROR,
            id: 0,
            code: error.codeNumber,
            message: error.message,
          });
        } catch {
          // Nothing more can be said.
        }
      }
      this.close(error);
    }
  }
}

async function removeStaleSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (!info.isSocket) {
    throw new CellError(
      "FAILED_PRECONDITION",
      `'${path}' exists and is not a socket: move it away, or serve on another path`,
    );
  }
  try {
    const probe = await Deno.connect({ transport: "unix", path });
    probe.close();
  } catch {
    await Deno.remove(path); // Left behind by a process that died: nothing listens on it.
    return;
  }
  throw new CellError(
    "ALREADY_EXISTS",
    `Another process is already serving on '${path}': stop it, or serve under another name`,
  );
}

/**
 * The Unix-socket transport. Addresses are socket paths; the directory is created 0700 and the
 * socket 0600, a stale socket left by a dead process is replaced, and a live one is refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { udsTransport } from "@cell/sdk";
 * assert.ok(udsTransport.name === "uds");
 * ```
 */
export const udsTransport: Transport = {
  name: "uds",
  async listen(
    path: string,
    onConnection: (connection: Connection) => void,
    options: ListenOptions = {},
  ): Promise<Listener> {
    checkPath(path);
    await ensurePrivateDir(dirname(path));
    await removeStaleSocket(path);
    const listener = Deno.listen({ transport: "unix", path });
    await Deno.chmod(path, 0o600);
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    let closing = false;
    (async () => {
      try {
        for await (const conn of listener) onConnection(new UdsConnection(conn, maxFrame));
      } catch (e) {
        if (!closing) throw e;
      }
    })();
    return {
      address: path,
      async close(): Promise<void> {
        if (closing) return;
        closing = true;
        listener.close();
        await Deno.remove(path).catch(() => {});
      },
    };
  },
  async dial(path: string, options: DialOptions = {}): Promise<Connection> {
    checkPath(path);
    options.signal?.throwIfAborted();
    let conn: Deno.UnixConn;
    try {
      conn = await Deno.connect({ transport: "unix", path });
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "no socket there"
        : e instanceof Deno.errors.ConnectionRefused
        ? "nothing listens on the socket"
        : e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
        ? "permission denied"
        : (e as Error).message;
      throw new CellError(
        "UNAVAILABLE",
        `Cannot connect to '${path}' (${why}): is the cell running, with the same CELL_HOME?`,
        { cause: e },
      );
    }
    return new UdsConnection(conn, options.maxFrame ?? DEFAULT_MAX_FRAME);
  },
};
