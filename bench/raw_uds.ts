/**
 * The floor for `deno task bench:rpc`: raw Deno Unix-socket ping-pong with no
 * framing library and no serialization. Anything an RPC stack does over a
 * Unix socket costs at least this much.
 *
 * The server is this same file run as a separate Deno process with
 * `--server PATH`. It echoes fixed-size 32-byte messages. The first byte a
 * client sends on a connection picks how:
 * - {@link MODE_PER_MESSAGE}: read exactly 32 bytes, write those 32 back,
 *   one `read()` and one `write()` per message;
 * - {@link MODE_BATCHED}: read whatever has arrived and write every complete
 *   message back in one `write()` (a partial message waits for the next read).
 *
 * The client measures:
 * - latency (`p50_us`, `p99_us`, ...): one message at a time on a per-message
 *   connection, timed by `measureLatency` from `_measure.mjs` like every other
 *   contender;
 * - `ops_s_64`: `concurrency` (default 64) messages pipelined on one
 *   per-message connection. Each reply releases the next message with its own
 *   `write()`, so exactly `concurrency` are outstanding; messages are fixed
 *   size, so the client just counts 32-byte replies.
 * - `ops_s_64_batched`: the same, but both sides coalesce: the server echoes
 *   all complete messages per read in one write, and the client releases all
 *   the replies of one read in one write. This is the syscall-amortized
 *   ceiling, reachable only by an RPC stack that coalesces writes.
 *
 * Usage: `deno run -A bench/raw_uds.ts [--iterations N] [--warmup N]
 * [--duration-ms N] [--warmup-ms N] [--concurrency N]` prints one JSON line.
 *
 * @module
 */

import {
  type BenchOptions,
  DEFAULT_OPTIONS,
  jsonLine,
  measureLatency,
  parseBenchOptions,
} from "./_measure.mjs";
import { onCpu, SERVER_CPU } from "./_cpus.ts";

/** Size of every message, both directions. */
export const MESSAGE_BYTES = 32;

/** Connection mode byte: echo each 32-byte message with its own read and write. */
export const MODE_PER_MESSAGE = 0x4d; // "M"

/** Connection mode byte: echo all complete messages of one read in one write. */
export const MODE_BATCHED = 0x42; // "B"

/** How long the server may take to start listening. */
const READY_TIMEOUT_MS = 15_000;

/** Prefix of the temporary directory holding the socket. */
const TEMP_PREFIX = "cell-bench-raw-uds-";

/** Options of {@link measureRawUds}; defaults as in `DEFAULT_OPTIONS` of `_measure.mjs`. */
export type RawUdsOptions = Partial<BenchOptions>;

/** Result of {@link measureRawUds}. Latencies in microseconds, rounded to 0.1. */
export interface RawUdsResult extends Record<string, number> {
  /** Median round trip of one 32-byte message. */
  p50_us: number;
  /** 99th percentile round trip. */
  p99_us: number;
  /** Messages echoed per second with `concurrency` (default 64) outstanding, one write per message. */
  ops_s_64: number;
  /** Same as `ops_s_64` with both sides coalescing writes. */
  ops_s_64_batched: number;
  /** 99.9th percentile round trip. */
  p999_us: number;
  /** Mean round trip. */
  mean_us: number;
  /** Timed one-at-a-time round trips. */
  iterations: number;
  /** Messages kept outstanding for `ops_s_64` and `ops_s_64_batched`. */
  concurrency: number;
}

/** Writes all of `data`, looping over short writes. */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/**
 * Fills `buf` from `conn`. Returns false on a clean end of stream before the
 * first byte; throws if the stream ends part-way.
 */
async function readFull(conn: Deno.Conn, buf: Uint8Array): Promise<boolean> {
  let got = 0;
  while (got < buf.length) {
    const r = await conn.read(buf.subarray(got));
    if (r === null) {
      if (got === 0) return false;
      throw new Error("raw_uds: connection closed mid-message");
    }
    got += r;
  }
  return true;
}

/** Echoes with one read and one write per 32-byte message. */
async function echoPerMessage(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(MESSAGE_BYTES);
  while (await readFull(conn, buf)) await writeAll(conn, buf);
}

/** Echoes all complete messages of each read with one write. */
async function echoBatched(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  let pending = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(pending));
    if (n === null) return;
    pending += n;
    const whole = pending - (pending % MESSAGE_BYTES);
    if (whole === 0) continue;
    await writeAll(conn, buf.subarray(0, whole));
    buf.copyWithin(0, whole, pending);
    pending -= whole;
  }
}

/** Serves one connection in the mode its first byte selects, until it closes. */
async function echo(conn: Deno.Conn): Promise<void> {
  try {
    const mode = new Uint8Array(1);
    if (!(await readFull(conn, mode))) return;
    if (mode[0] === MODE_BATCHED) await echoBatched(conn);
    else if (mode[0] === MODE_PER_MESSAGE) await echoPerMessage(conn);
    else throw new Error(`raw_uds server: unknown mode byte ${mode[0]}`);
  } catch (err) {
    if (!(err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe)) {
      throw err;
    }
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Server side (`--server PATH`): listens on the Unix socket `PATH`, prints
 * `ready`, echoes every connection, and exits when its stdin closes, so it
 * never outlives the client. On exit it removes the socket and, if it is an
 * empty directory made by {@link measureRawUds}, the socket's directory.
 */
async function serve(path: string): Promise<void> {
  const listener = Deno.listen({ transport: "unix", path });
  void Deno.stdin.readable.pipeTo(new WritableStream()).finally(() => {
    listener.close();
    const dir = path.slice(0, Math.max(0, path.lastIndexOf("/")));
    for (const p of dir.split("/").pop()?.startsWith(TEMP_PREFIX) ? [path, dir] : [path]) {
      try {
        Deno.removeSync(p); // non-recursive: a directory goes only if empty
      } catch {
        // the client removed it already
      }
    }
    Deno.exit(0);
  });
  await Deno.stdout.write(new TextEncoder().encode("ready\n"));
  for await (const conn of listener) {
    echo(conn).catch((err) => console.error("raw_uds server:", err));
  }
}

/** Connects to the echo server and selects the connection's echo mode. */
async function connect(path: string, mode: number): Promise<Deno.UnixConn> {
  const conn = await Deno.connect({ transport: "unix", path });
  await writeAll(conn, Uint8Array.of(mode));
  return conn;
}

/** Resolves once the server prints `ready`; rejects on EOF or timeout. */
async function waitReady(
  reader: ReadableStreamDefaultReader<string>,
  status: Promise<Deno.CommandStatus>,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`raw_uds: server not ready within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
  });
  const exited = status.then((s): never => {
    throw new Error(`raw_uds: server exited early with code ${s.code}`);
  });
  const ready = (async () => {
    let text = "";
    while (!text.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("raw_uds: server closed stdout before it was ready");
      text += value;
    }
  })();
  try {
    await Promise.race([ready, timeout, exited]);
  } finally {
    clearTimeout(timer);
    exited.catch(() => {});
  }
}

/**
 * Pipelined throughput: keeps `concurrency` messages outstanding on `conn` and
 * counts the replies that arrive inside the timed window. Each read is
 * followed by one write per reply (`batched` false) or a single write for all
 * of them (`batched` true). After the window no new messages are sent and the
 * outstanding ones are drained, leaving the connection idle.
 */
async function pipelinedOpsPerSecond(
  conn: Deno.Conn,
  { concurrency, warmupMs, durationMs }: BenchOptions,
  batched: boolean,
): Promise<number> {
  const out = new Uint8Array(MESSAGE_BYTES * concurrency).fill(0x5a);
  const one = out.subarray(0, MESSAGE_BYTES);
  const inBuf = new Uint8Array(64 * 1024);
  const windowStart = performance.now() + warmupMs;
  const windowEnd = windowStart + durationMs;
  let outstanding = concurrency;
  let partial = 0;
  let counted = 0;
  let sending = true;
  await writeAll(conn, out);
  while (outstanding > 0) {
    const n = await conn.read(inBuf);
    if (n === null) throw new Error("raw_uds: server closed the connection");
    partial += n;
    const replies = Math.floor(partial / MESSAGE_BYTES);
    if (replies === 0) continue;
    partial -= replies * MESSAGE_BYTES;
    outstanding -= replies;
    const now = performance.now();
    if (now >= windowEnd) sending = false;
    else if (now >= windowStart) counted += replies;
    if (!sending) continue;
    if (batched) await writeAll(conn, out.subarray(0, replies * MESSAGE_BYTES));
    else for (let i = 0; i < replies; i++) await writeAll(conn, one);
    outstanding += replies;
  }
  return Math.round(counted / (durationMs / 1000));
}

/** A running echo server with one per-message connection to it. */
export interface RawUdsEcho extends AsyncDisposable {
  /** One 32-byte round trip on the per-message connection. */
  roundTrip(): Promise<void>;
  /** The per-message connection. */
  conn: Deno.Conn;
  /** Opens another connection in `mode`. */
  connect(mode: number): Promise<Deno.Conn>;
}

/**
 * Starts the echo server in a separate Deno process and connects to it. Disposing closes the
 * connections, stops the server and removes its temporary directory.
 *
 * Needs `--allow-run` (to start `Deno.execPath()`), and `--allow-read`,
 * `--allow-write` and `--allow-net` for the temporary socket.
 */
export async function startRawUds(): Promise<RawUdsEcho> {
  const dir = await Deno.makeTempDir({ prefix: TEMP_PREFIX });
  const path = `${dir}/echo.sock`;
  const conns: Deno.Conn[] = [];
  let child: Deno.ChildProcess | undefined;
  let stdout: ReadableStreamDefaultReader<string> | undefined;
  const close = async () => {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    if (child) {
      // Closing stdin tells the server to exit; SIGKILL if it does not.
      await child.stdin.close().catch(() => {});
      const proc = child;
      const timer = setTimeout(() => proc.kill("SIGKILL"), 2000);
      await child.status;
      clearTimeout(timer);
    }
    await stdout?.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const [command, args] = onCpu(SERVER_CPU, Deno.execPath(), [
      "run",
      "--quiet",
      "--no-config",
      "--allow-read",
      "--allow-write",
      `--allow-net=unix:${path}`,
      import.meta.url,
      "--server",
      path,
    ]);
    child = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    await waitReady(stdout, child.status);
    const open = async (mode: number) => {
      const conn = await connect(path, mode);
      conns.push(conn);
      return conn;
    };
    const c = await open(MODE_PER_MESSAGE);
    const msg = new Uint8Array(MESSAGE_BYTES).map((_, i) => i);
    const reply = new Uint8Array(MESSAGE_BYTES);
    const roundTrip = async (): Promise<void> => {
      await writeAll(c, msg);
      if (!(await readFull(c, reply))) throw new Error("raw_uds: server closed the connection");
    };
    await roundTrip();
    if (!reply.every((b, i) => b === msg[i])) throw new Error("raw_uds: echo mismatch");
    return { roundTrip, conn: c, connect: open, [Symbol.asyncDispose]: close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Measures the raw Unix-socket floor: starts the echo server in a separate
 * Deno process, measures latency one message at a time, then throughput with
 * `concurrency` messages outstanding (per-message and batched), then stops
 * the server and removes its temporary directory.
 *
 * @param opts Iteration counts and durations; unset fields use the defaults.
 * @returns `{ p50_us, p99_us, ops_s_64, ops_s_64_batched, ... }`.
 */
export async function measureRawUds(opts: RawUdsOptions = {}): Promise<RawUdsResult> {
  const given = Object.entries(opts).filter(([, v]) => v !== undefined);
  const o: BenchOptions = { ...DEFAULT_OPTIONS, ...Object.fromEntries(given) };
  await using echo = await startRawUds();
  const lat = await measureLatency(echo.roundTrip, o);
  const perMessage = await pipelinedOpsPerSecond(echo.conn, o, false);
  const batched = await pipelinedOpsPerSecond(await echo.connect(MODE_BATCHED), o, true);
  return {
    p50_us: lat.p50_us,
    p99_us: lat.p99_us,
    ops_s_64: perMessage,
    ops_s_64_batched: batched,
    p999_us: lat.p999_us,
    mean_us: lat.mean_us,
    iterations: lat.iterations,
    concurrency: o.concurrency,
  };
}

if (import.meta.main) {
  const serverAt = Deno.args.indexOf("--server");
  if (serverAt >= 0) {
    const path = Deno.args[serverAt + 1];
    if (path === undefined) throw new Error("raw_uds: --server needs a socket path");
    await serve(path);
  } else {
    try {
      const opts = parseBenchOptions(Deno.args, (k) => Deno.env.get(k));
      const result = await measureRawUds(opts);
      await Deno.stdout.write(new TextEncoder().encode(jsonLine(result)));
    } catch (err) {
      console.error("raw_uds: error:", err instanceof Error ? (err.stack ?? err.message) : err);
      Deno.exit(1);
    }
  }
}
