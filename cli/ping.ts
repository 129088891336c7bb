/**
 * `cell ping <cell>`: is the cell there, and how long does a round trip take?
 *
 * @module
 */
import type { Command } from "commander";
import {
  act,
  compactJson,
  type ConnectFlags,
  connectTo,
  type Context,
  EXIT_OK,
  positiveInteger,
} from "./_common.ts";

/** Flags of `cell ping`. */
interface PingFlags extends ConnectFlags {
  count: number;
  interval: number;
  json?: boolean;
}

const ms = (n: number) => `${n.toFixed(3)} ms`;
/** Milliseconds to the microsecond: finer digits are noise. */
const round = (n: number) => Math.round(n * 1000) / 1000;

/** Adds `cell ping` to `program`. */
export function registerPing(program: Command, ctx: Context): void {
  program
    .command("ping")
    .summary("measure the round-trip time to a running cell")
    .description(
      "Connect to the cell <cell> and send PING frames, printing each round-trip time and, " +
        "for more than one, the minimum, average and maximum. Connecting is not timed.",
    )
    .argument("<cell>", "name of the cell, for example my-service")
    .option("-c, --count <n>", "how many pings to send", positiveInteger("--count"), 1)
    .option(
      "-i, --interval <ms>",
      "milliseconds between pings",
      positiveInteger("--interval"),
      200,
    )
    .option(
      "-t, --timeout <ms>",
      "deadline of each ping in milliseconds",
      positiveInteger("--timeout"),
    )
    .option(
      "-s, --socket <path>",
      "connect to this Unix socket instead of $CELL_HOME/run/<cell>.sock",
    )
    .option(
      "--json",
      "print one line of JSON: {cell, address, count, rtt_ms, min_ms, avg_ms, max_ms}",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ cell ping my-service
  $ cell ping my-service --count 5 --interval 100
  $ cell ping my-service --json`,
    )
    .action((cell: string, flags: PingFlags) =>
      act(ctx, { json: flags.json, cell, socket: flags.socket }, async () => {
        await using client = await connectTo(ctx, cell, flags);
        const address = client.$info.address;
        const rtts: number[] = [];
        for (let i = 0; i < flags.count; i++) {
          if (i > 0) await new Promise((resolve) => setTimeout(resolve, flags.interval));
          const rtt = await client.$ping(
            flags.timeout === undefined ? {} : { timeoutMs: flags.timeout },
          );
          rtts.push(rtt);
          if (!flags.json) ctx.io.stdout(`pong from ${cell} (${address}): time=${ms(rtt)}\n`);
        }
        const min = Math.min(...rtts);
        const max = Math.max(...rtts);
        const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
        if (flags.json) {
          ctx.io.stdout(compactJson({
            cell,
            address,
            count: rtts.length,
            rtt_ms: rtts.map(round),
            min_ms: round(min),
            avg_ms: round(avg),
            max_ms: round(max),
          }));
        } else if (rtts.length > 1) {
          ctx.io.stdout(`${rtts.length} pings: min ${ms(min)}, avg ${ms(avg)}, max ${ms(max)}\n`);
        }
        return EXIT_OK;
      })
    );
}
