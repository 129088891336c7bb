/**
 * The in-process transport: a client and a server in the same isolate exchange frame objects
 * directly, with no encoding. Payloads are passed by reference, as in Moleculer's local calls:
 * a handler must not mutate its request, nor a client the response it received.
 *
 * @module
 */
import { CellError } from "./errors.ts";
import type { Frame } from "./protocol.ts";
import {
  closedConnection,
  type Connection,
  type ConnectionHandlers,
  type DialOptions,
  type Listener,
  type ListenOptions,
  type Transport,
} from "./transport.ts";

const LISTENERS = new Map<string, (connection: Connection) => void>();

class InprocConnection implements Connection {
  readonly transport = "inproc";
  peerMaxFrame = Infinity;
  peer!: InprocConnection;
  #handlers: ConnectionHandlers | undefined;
  #pending: Frame[] = [];
  #closed = false;
  #scheduled = false;

  get closed(): boolean {
    return this.#closed;
  }

  start(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    this.#schedule();
  }

  send(frame: Frame): void {
    if (this.#closed) throw closedConnection();
    this.peer.#receive(frame);
  }

  close(reason?: CellError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers?.onClose(reason);
    this.peer.close(reason ?? new CellError("UNAVAILABLE", "Peer closed the connection"));
  }

  #receive(frame: Frame): void {
    this.#pending.push(frame);
    this.#schedule();
  }

  // Delivery is asynchronous (one microtask per batch) so that a send never re-enters its caller.
  #schedule(): void {
    if (this.#scheduled || !this.#handlers || this.#pending.length === 0) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      const frames = this.#pending;
      this.#pending = [];
      for (const frame of frames) {
        if (this.#closed) return;
        this.#handlers!.onFrame(frame);
      }
    });
  }
}

/**
 * The in-process transport. Addresses are cell names, known only within this isolate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inprocTransport } from "@cell/sdk";
 * assert.ok(inprocTransport.name === "inproc");
 * ```
 */
export const inprocTransport: Transport & { has(address: string): boolean } = {
  name: "inproc",
  has(address: string): boolean {
    return LISTENERS.has(address);
  },
  listen(
    address: string,
    onConnection: (connection: Connection) => void,
    _options?: ListenOptions,
  ): Promise<Listener> {
    if (LISTENERS.has(address)) {
      return Promise.reject(
        new CellError(
          "ALREADY_EXISTS",
          `A cell named '${address}' is already served in this process: stop it first`,
        ),
      );
    }
    LISTENERS.set(address, onConnection);
    return Promise.resolve({
      address,
      close(): Promise<void> {
        if (LISTENERS.get(address) === onConnection) LISTENERS.delete(address);
        return Promise.resolve();
      },
    });
  },
  dial(address: string, options?: DialOptions): Promise<Connection> {
    options?.signal?.throwIfAborted();
    const accept = LISTENERS.get(address);
    if (!accept) {
      return Promise.reject(
        new CellError("UNAVAILABLE", `No cell named '${address}' is served in this process`),
      );
    }
    const client = new InprocConnection();
    const server = new InprocConnection();
    client.peer = server;
    server.peer = client;
    accept(server);
    return Promise.resolve(client);
  },
};
