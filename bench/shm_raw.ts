/**
 * The ring's floor in `bench:rpc`: 32-byte records sent one way through `@cell/ring` to a
 * consumer in another process (pinned to the server CPU), without framing or serialization.
 *
 * - `one_way_msgs_s`: every record is published with its own atomic store (and a check
 *   whether the consumer sleeps);
 * - `one_way_msgs_s_batched`: records are published 64 at a time.
 *
 * The producer counts the records the ring accepted inside the timed window; the ring is
 * bounded, so it accepts them only as fast as the consumer frees room.
 *
 * Usage: `deno run -A bench/shm_raw.ts [--duration-ms N]` prints one JSON line; with
 * `--server PATH` it is the consumer.
 *
 * @module
 */
import { dialRing, listenRing, type RingChannel } from "@cell/ring";
import { type BenchOptions, DEFAULT_OPTIONS, jsonLine, parseBenchOptions } from "./_measure.mjs";
import { pinSelf } from "./_cpus.ts";
import { onServerCpu } from "./shm_cpus.ts";
import { waitReady } from "./_ready.ts";

/** Size of every message. */
export const MESSAGE_BYTES = 32;
const BATCH = 64;

/** Consumes every record of `channel` until the producer closes; yields now and then. */
async function consume(channel: RingChannel): Promise<void> {
  const reader = channel.reader;
  let sum = 0;
  for (;;) {
    for (let spin = 0; spin < 1_000_000; spin++) {
      let n = 0;
      for (let at = reader.nextOffset(); at >= 0; at = reader.nextOffset()) {
        sum += reader.bytes[at]!; // Touch the message.
        n++;
      }
      if (n > 0) reader.release();
      else if ((spin & 1023) === 0 && channel.peerClosed()) {
        channel.close();
        return void (sum === -1 && console.log(sum));
      }
    }
    await new Promise((r) => setTimeout(r, 0));
  }
}

function produce(channel: RingChannel, opts: BenchOptions, batched: boolean): number {
  const writer = channel.writer;
  const message = new Uint8Array(MESSAGE_BYTES).map((_, i) => i);
  const start = performance.now();
  const windowStart = start + opts.warmupMs, windowEnd = windowStart + opts.durationMs;
  let counted = 0;
  for (let now = start; now < windowEnd; now = performance.now()) {
    let sent = 0;
    for (let i = 0; i < 4096; i += BATCH) {
      for (let j = 0; j < BATCH; j++) {
        if (!writer.write(message, false, !batched)) break;
        sent++;
      }
      if (batched) writer.publish();
      channel.notify();
    }
    if (now >= windowStart) counted += sent;
  }
  return Math.round(counted / (opts.durationMs / 1000));
}

/** One-way 32-byte messages per second through the ring, per-record and batched. */
export async function measureShmRaw(opts: BenchOptions): Promise<Record<string, number>> {
  const dir = await Deno.makeTempDir({ prefix: "cell-bench-shm-raw-" });
  const path = `${dir}/raw.ring`;
  const [command, args] = onServerCpu(Deno.execPath(), [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "--server",
    path,
  ]);
  const server = new Deno.Command(command, { args, stdout: "piped", stderr: "inherit" }).spawn();
  try {
    await waitReady(server, "shm_raw consumer");
    const result: Record<string, number> = {};
    for (const batched of [false, true]) {
      const channel = await dialRing(path);
      result[batched ? "one_way_msgs_s_batched" : "one_way_msgs_s"] = produce(
        channel,
        opts,
        batched,
      );
      channel.close();
    }
    return result;
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--server");
  if (at >= 0) {
    await listenRing(Deno.args[at + 1]!, (channel) => void consume(channel));
    console.log("ready");
  } else {
    await pinSelf();
    const opts = {
      ...DEFAULT_OPTIONS,
      ...parseBenchOptions(Deno.args, (k: string) => Deno.env.get(k)),
    };
    await Deno.stdout.write(
      new TextEncoder().encode(jsonLine({ shm_raw: await measureShmRaw(opts) })),
    );
  }
}
