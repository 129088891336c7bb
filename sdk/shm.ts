/**
 * The shared-memory ring transport, as the SDK sees it. `serve()` and `connect()` load it
 * lazily through {@linkcode loadShm}; when it cannot be used here (no FFI permission, no C
 * compiler and no built library, `CELL_SHM=0`), they stay on Unix sockets.
 *
 * CONTRACT (issue 3 fills this in; issue 4's SDK integration codes against it):
 * - `loadShm()` resolves to the ring `Transport` (name `"shm"`) or `undefined`; it never throws.
 * - `shmAddress(socket)` is the ring's handshake address for the cell served on Unix socket
 *   `socket` (same directory). A server that loaded the ring listens there besides `socket`
 *   and registers the endpoint `{transport: "shm", address}`; a client prefers it when its own
 *   `loadShm()` succeeds, and falls back to the Unix socket when dialing it fails.
 *
 * The ring itself (C library, segment layout, handshake) is the `@cell/ring` package; this
 * module adapts it to {@linkcode Transport}. See docs/ring.md.
 *
 * @module
 */
import { dirname } from "node:path";
import { dialRing, libraryPath, listenRing, loadRingLibrary, readEnv, RingError } from "@cell/ring";
import { CellError } from "./errors.ts";
import { ensurePrivateDir } from "./home.ts";
import { DEFAULT_MAX_FRAME } from "./protocol.ts";
import type { Connection, DialOptions, Listener, ListenOptions, Transport } from "./transport.ts";
import { ShmConnection } from "./_shm_connection.ts";

/**
 * The ring's handshake address next to Unix socket `socket`: `<dir>/<name>.ring`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shmAddress } from "@cell/sdk";
 * assert.ok(shmAddress("/srv/cell/run/a.sock") === "/srv/cell/run/a.ring");
 * ```
 */
export function shmAddress(socket: string): string {
  return socket.endsWith(".sock") ? `${socket.slice(0, -5)}.ring` : `${socket}.ring`;
}

function toCellError(e: unknown): CellError {
  if (e instanceof RingError) return new CellError(e.code, e.message, { cause: e });
  return CellError.from(e);
}

/**
 * The shared-memory transport. Prefer {@linkcode loadShm}, which says whether it can be used
 * here; this object loads (and if needed builds) the C library on first use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shmTransport } from "@cell/sdk";
 * assert.ok(shmTransport.name === "shm");
 * ```
 */
export const shmTransport: Transport = {
  name: "shm",
  async listen(
    address: string,
    onConnection: (connection: Connection) => void,
    options: ListenOptions = {},
  ): Promise<Listener> {
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    await ensurePrivateDir(dirname(address));
    try {
      const listener = await listenRing(address, (channel) => {
        onConnection(new ShmConnection(channel, maxFrame));
      });
      return { address, close: () => listener.close() };
    } catch (e) {
      throw toCellError(e);
    }
  },
  async dial(address: string, options: DialOptions = {}): Promise<Connection> {
    options.signal?.throwIfAborted();
    try {
      const channel = await dialRing(address);
      return new ShmConnection(channel, options.maxFrame ?? DEFAULT_MAX_FRAME);
    } catch (e) {
      throw toCellError(e);
    }
  },
};

/**
 * The ring transport when this process can use it, else `undefined`: it needs Linux, the `ffi`
 * permission for the library (`--allow-ffi`, or `--allow-ffi=<libraryPath()>` in a sandbox), and
 * the library, built on first use with the system compiler (or `CELL_RING_LIB`); `CELL_SHM=0`
 * turns it off. Environment variables this process may not read count as unset. Never throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShm } from "@cell/sdk";
 * const shm = await loadShm();
 * assert.ok(shm === undefined || shm.name === "shm");
 * ```
 */
export async function loadShm(): Promise<Transport | undefined> {
  try {
    if (Deno.build.os !== "linux" || readEnv("CELL_SHM") === "0") return undefined;
    const path = await libraryPath();
    if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") return undefined;
    await loadRingLibrary();
    return shmTransport;
  } catch {
    return undefined;
  }
}
