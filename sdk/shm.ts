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
 * @module
 */
import type { Transport } from "./transport.ts";

/** The ring's handshake address next to Unix socket `socket`: `<dir>/<name>.ring`. */
export function shmAddress(socket: string): string {
  return socket.endsWith(".sock") ? `${socket.slice(0, -5)}.ring` : `${socket}.ring`;
}

/** The ring transport when this process can use it, else `undefined`. Never throws. */
export function loadShm(): Promise<Transport | undefined> {
  return Promise.resolve(undefined);
}
