/**
 * Setting up a ring connection over a Unix socket owned by the C library (Deno exposes no fd of
 * its sockets, and `SO_PEERCRED` needs one). The server:
 *
 * 1. refuses a peer whose uid (`SO_PEERCRED`) is not its own, saying why;
 * 2. sends a random challenge; the client answers with HMAC-SHA256 over it, keyed by the 0600
 *    key file `ring.key` next to the socket (only the same user can read it), plus a challenge
 *    of its own;
 * 3. creates a 0600 segment, sends its name and its own answer; the client checks the answer
 *    and the server's uid, maps the segment and says so; the server then unlinks the name.
 *
 * Messages are a 4-byte big-endian length and a JSON object. The socket then stays open, unused,
 * so that each side sees the other's death as the socket closing.
 *
 * @module
 */
import { cString, errnoName, loadRingLibrary, type RingSymbols } from "./lib.ts";
import { RingChannel } from "./channel.ts";
import { checkSegment, validCapacity } from "./ring.ts";
import { collectStaleSegments, createSegment, openSegment, type Segment } from "./segment.ts";

/** Why a handshake failed, as a gRPC-style code the SDK turns into its error. */
export type RingErrorCode =
  | "UNAVAILABLE"
  | "PERMISSION_DENIED"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "INTERNAL";

/**
 * A failed ring handshake or listen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RingError } from "@cell/ring";
 * const e = new RingError("PERMISSION_DENIED", "Ring connection refused");
 * assert.ok(e.code === "PERMISSION_DENIED");
 * ```
 */
export class RingError extends Error {
  override name = "RingError";
  /** The gRPC-style code. */
  readonly code: RingErrorCode;
  constructor(code: RingErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Default bytes of each ring: 1 MiB (records up to 256 KiB; larger messages are split). */
export const DEFAULT_CAPACITY = 1 << 20;
const TIMEOUT_MS = 5000;
const MAX_MESSAGE = 4096;

/**
 * The key file of the handshakes at socket `path`: `ring.key` in the same directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyPath } from "@cell/ring";
 * assert.ok(keyPath("/srv/cell/run/a.ring") === "/srv/cell/run/ring.key");
 * ```
 */
export function keyPath(path: string): string {
  return `${path.slice(0, path.lastIndexOf("/") + 1) || "./"}ring.key`;
}

async function readKey(path: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await Deno.readFile(keyPath(path)));
}

/** Reads the key file, creating it (32 random bytes, mode 0600) when there is none. */
async function ensureKey(path: string): Promise<Uint8Array<ArrayBuffer>> {
  const file = keyPath(path);
  try {
    return await readKey(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const partial = `${file}.${Deno.pid}.tmp`;
  await Deno.writeFile(partial, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
  try {
    await Deno.link(partial, file); // Fails if another server made one meanwhile: use that.
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  } finally {
    await Deno.remove(partial);
  }
  return await readKey(path);
}

async function mac(key: Uint8Array<ArrayBuffer>, label: string, nonce: string): Promise<string> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const sig = await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(`${label}\0${nonce}`));
  return hex(new Uint8Array(sig));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sameText(a: unknown, b: string): boolean {
  if (typeof a !== "string" || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

type Message = Record<string, unknown>;

async function send(lib: RingSymbols, fd: number, message: Message): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify(message));
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  const n = await lib.cell_ring_write(fd, out, out.length, TIMEOUT_MS);
  if (n < 0) throw new RingError("UNAVAILABLE", `Ring handshake write failed: ${errnoName(n)}`);
}

async function readExact(lib: RingSymbols, fd: number, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const part = buf.subarray(got);
    const r = await lib.cell_ring_read(fd, part, part.length, TIMEOUT_MS);
    if (r === 0) throw new RingError("UNAVAILABLE", "Ring handshake: the peer closed the socket");
    if (r < 0) throw new RingError("UNAVAILABLE", `Ring handshake read failed: ${errnoName(r)}`);
    got += r;
  }
  return buf;
}

async function receive(lib: RingSymbols, fd: number): Promise<Message> {
  const length = new DataView((await readExact(lib, fd, 4)).buffer).getUint32(0);
  if (length > MAX_MESSAGE) {
    throw new RingError("UNAVAILABLE", `Ring handshake message of ${length} bytes is too long`);
  }
  const value = JSON.parse(new TextDecoder().decode(await readExact(lib, fd, length)));
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RingError("UNAVAILABLE", "Ring handshake message is not a JSON object");
  }
  return value as Message;
}

function peerCred(lib: RingSymbols, fd: number): { pid: number; uid: number } {
  const out = new Uint32Array(3);
  const r = lib.cell_ring_peer_cred(fd, new Uint8Array(out.buffer));
  if (r < 0) throw new RingError("UNAVAILABLE", `SO_PEERCRED failed: ${errnoName(r)}`);
  return { pid: out[0]!, uid: out[1]! };
}

/** Options of {@linkcode listenRing}. */
export interface ListenRingOptions {
  /** Bytes of each ring of a connection, a power of two. @default {1 << 20} */
  capacity?: number;
  /** Told about handshakes that failed (refused peers, timeouts). */
  onRefused?: (error: RingError) => void;
}

/** A listening ring handshake socket. */
export interface RingListener {
  /** The socket path. */
  readonly path: string;
  /** Stops accepting and removes the socket; established channels stay open. */
  close(): Promise<void>;
}

async function removeStaleSocket(lib: RingSymbols, path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (!info.isSocket) {
    throw new RingError(
      "FAILED_PRECONDITION",
      `'${path}' exists and is not a socket: move it away`,
    );
  }
  const fd = lib.cell_ring_connect(cString(path));
  if (fd >= 0) {
    lib.cell_ring_close(fd);
    throw new RingError("ALREADY_EXISTS", `Another process already listens on '${path}'`);
  }
  await Deno.remove(path);
}

/**
 * Listens for ring connections at socket `path` (mode 0600) and hands every channel that
 * completed the handshake to `onChannel`. Collects stale segments of this user first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dialRing, listenRing, type RingChannel } from "@cell/ring";
 * const dir = await Deno.makeTempDir();
 * let server: RingChannel | undefined;
 * const listener = await listenRing(`${dir}/echo.ring`, (channel) => server = channel);
 * const client = await dialRing(`${dir}/echo.ring`);
 * client.writer.write(new TextEncoder().encode("ping"), false);
 * client.notify();
 * while (!server) await new Promise((r) => setTimeout(r, 1));
 * assert.ok(new TextDecoder().decode(server.reader.next()!) === "ping");
 * client.close();
 * server.close();
 * await listener.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function listenRing(
  path: string,
  onChannel: (channel: RingChannel) => void,
  options: ListenRingOptions = {},
): Promise<RingListener> {
  const lib = await loadRingLibrary();
  const capacity = options.capacity ?? DEFAULT_CAPACITY;
  if (!validCapacity(capacity)) throw new RangeError(`Invalid ring capacity ${capacity}`);
  collectStaleSegments(lib);
  const key = await ensureKey(path);
  await removeStaleSocket(lib, path);
  const fd = lib.cell_ring_listen(cString(path));
  if (fd < 0) throw new RingError("UNAVAILABLE", `Cannot listen on '${path}': ${errnoName(fd)}`);
  let closing = false;
  const accepting = (async () => {
    while (!closing) {
      const conn = await lib.cell_ring_accept(fd, 1000);
      if (closing) {
        if (conn >= 0) lib.cell_ring_close(conn);
        break;
      }
      if (conn === -110) continue; // ETIMEDOUT: look at `closing` again.
      if (conn < 0) break;
      accept(lib, conn, key, capacity).then(onChannel, (e: RingError) => options.onRefused?.(e));
    }
    lib.cell_ring_close(fd);
  })();
  return {
    path,
    async close() {
      if (closing) return;
      closing = true;
      lib.cell_ring_shutdown(fd); // Wakes the pending accept.
      await accepting;
      await Deno.remove(path).catch(() => {});
    },
  };
}

async function accept(
  lib: RingSymbols,
  fd: number,
  key: Uint8Array<ArrayBuffer>,
  capacity: number,
): Promise<RingChannel> {
  let segment: Segment | undefined;
  try {
    const peer = peerCred(lib, fd);
    const euid = lib.cell_ring_euid();
    if (peer.uid !== euid) {
      const message = `Ring connection refused: peer uid ${peer.uid} is not the server's uid ` +
        `${euid}; only processes of the same user may share memory with it`;
      await send(lib, fd, { error: "PERMISSION_DENIED", message }).catch(() => {});
      throw new RingError("PERMISSION_DENIED", message);
    }
    const nonce = hex(crypto.getRandomValues(new Uint8Array(32)));
    await send(lib, fd, { v: 1, nonce });
    const answer = await receive(lib, fd);
    if (!sameText(answer.mac, await mac(key, "cell-ring client", nonce))) {
      const message = "Ring connection refused: wrong answer to the challenge (another ring.key?)";
      await send(lib, fd, { error: "PERMISSION_DENIED", message }).catch(() => {});
      throw new RingError("PERMISSION_DENIED", message);
    }
    segment = createSegment(lib, capacity);
    const proof = await mac(key, "cell-ring server", String(answer.nonce));
    await send(lib, fd, { segment: segment.name, mac: proof });
    const mapped = await receive(lib, fd);
    segment.unlink();
    if (mapped.mapped !== true) throw new RingError("UNAVAILABLE", "Client did not map the ring");
    return new RingChannel(lib, segment, 1, fd, peer.pid);
  } catch (e) {
    segment?.unlink();
    lib.cell_ring_close(fd);
    throw e instanceof RingError ? e : new RingError("UNAVAILABLE", String(e), { cause: e });
  }
}

/**
 * Connects to the ring server at socket `path`, authenticates both ways, and maps the segment.
 * Fails with a {@linkcode RingError}: `UNAVAILABLE` when nothing listens, `PERMISSION_DENIED`
 * when the server refused this process or is not of the same user.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dialRing, RingError } from "@cell/ring";
 * const error = await dialRing("/nonexistent/cell.ring").catch((e) => e);
 * assert.ok(error instanceof RingError && error.code === "UNAVAILABLE");
 * ```
 */
export async function dialRing(path: string): Promise<RingChannel> {
  const lib = await loadRingLibrary();
  const fd = lib.cell_ring_connect(cString(path));
  if (fd < 0) {
    throw new RingError("UNAVAILABLE", `Cannot connect to ring '${path}': ${errnoName(fd)}`);
  }
  let segment: Segment | undefined;
  try {
    // The server's first message comes before our own uid check: a server refusing this
    // process says why.
    const challenge = await receive(lib, fd);
    if (typeof challenge.error === "string") {
      const code = challenge.error === "PERMISSION_DENIED" ? "PERMISSION_DENIED" : "UNAVAILABLE";
      throw new RingError(code, String(challenge.message));
    }
    const peer = peerCred(lib, fd);
    const euid = lib.cell_ring_euid();
    if (peer.uid !== euid) {
      throw new RingError(
        "PERMISSION_DENIED",
        `Ring server at '${path}' runs as uid ${peer.uid}, not ${euid}: refusing to share memory`,
      );
    }
    const key = await readKey(path).catch((e) => {
      throw new RingError("PERMISSION_DENIED", `Cannot read '${keyPath(path)}': ${e}`);
    });
    const nonce = hex(crypto.getRandomValues(new Uint8Array(32)));
    await send(lib, fd, {
      mac: await mac(key, "cell-ring client", String(challenge.nonce)),
      nonce,
    });
    const offer = await receive(lib, fd);
    if (typeof offer.error === "string") {
      throw new RingError("PERMISSION_DENIED", String(offer.message));
    }
    if (!sameText(offer.mac, await mac(key, "cell-ring server", nonce))) {
      throw new RingError("PERMISSION_DENIED", "Ring server failed the challenge: refusing it");
    }
    segment = openSegment(lib, String(offer.segment));
    checkSegment(segment.buffer);
    await send(lib, fd, { mapped: true });
    return new RingChannel(lib, segment, 0, fd, peer.pid);
  } catch (e) {
    lib.cell_ring_close(fd);
    throw e instanceof RingError ? e : new RingError("UNAVAILABLE", String(e), { cause: e });
  }
}

export { RingChannel, type RingSide } from "./channel.ts";
