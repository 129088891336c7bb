/**
 * `cell call <cell> <method> [json]`: calls a method of a running cell and prints the answer.
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
  prettyJson,
  UsageError,
} from "./_common.ts";
import { parsePayload } from "./payload.ts";

/** Flags of `cell call`. */
interface CallFlags extends ConnectFlags {
  metadata?: string[];
  json?: boolean;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...previous ?? [], value];
}

function parseMetadata(pairs: readonly string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new UsageError(
        `Metadata ${JSON.stringify(pair)} is not key=value`,
        ["example: --metadata trace-id=abc123 --metadata tenant=acme"],
      );
    }
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return metadata;
}

/** Adds `cell call` to `program`. */
export function registerCall(program: Command, ctx: Context): void {
  program
    .command("call")
    .summary("call a method of a running cell with a JSON payload")
    .description(
      "Call <method> of the cell <cell> and print its response as JSON.\n\n" +
        "The payload is the JSON argument; when it is '-', or missing and stdin is not a " +
        "terminal, it is read from stdin; otherwise it is {}. Bytes are written " +
        '{"$bytes":"<base64>"} both ways; 64-bit integers print as strings.\n\n' +
        "The cell is found at $CELL_HOME/run/<cell>.sock unless --socket says where.",
    )
    .argument("<cell>", "name of the cell, for example my-service")
    .argument("<method>", "method to call (list them with 'cell schema <cell>')")
    .argument("[json]", "request payload, a JSON object; '-' reads it from stdin")
    .option(
      "-t, --timeout <ms>",
      "deadline of the call in milliseconds",
      positiveInteger("--timeout"),
    )
    .option(
      "-s, --socket <path>",
      "connect to this Unix socket instead of $CELL_HOME/run/<cell>.sock",
    )
    .option(
      "-m, --metadata <key=value>",
      "metadata sent with the call (repeatable)",
      collect,
    )
    .option("--json", 'print one line of JSON; errors as {"error":{code,message,details}}')
    .addHelpText(
      "after",
      `
Examples:
  $ cell call my-service greet '{"name":"World"}'
  $ echo '{"name":"World"}' | cell call my-service greet
  $ cell call my-service greet '{"name":"World"}' --json | jq -r .greeting
  $ cell call my-service greet '{"name":"World"}' --timeout 500 -m trace-id=abc123
  $ cell call my-service greet '{"name":"World"}' --socket /tmp/cell/run/my-service.sock

Exit codes: 0 the call succeeded, 1 it failed (the error's code is printed, for example
UNAVAILABLE or INVALID_ARGUMENT), 2 the command line or the payload is wrong.`,
    )
    .action((cell: string, method: string, json: string | undefined, flags: CallFlags) =>
      act(ctx, { json: flags.json, cell, socket: flags.socket }, async () => {
        const metadata = parseMetadata(flags.metadata ?? []);
        const text = json === undefined || json === "-" ? await ctx.io.readStdin?.() : json;
        if (text === undefined && json === "-") {
          throw new UsageError(
            "'-' reads the payload from stdin, but stdin is a terminal",
            [`example: echo '{"name":"World"}' | cell call ${cell} ${method} -`],
          );
        }
        const payload = parsePayload(text ?? "{}", `cell call ${cell} ${method}`);
        await using client = await connectTo(ctx, cell, flags);
        const response = await client.$call(method, payload, {
          ...(flags.timeout === undefined ? {} : { timeoutMs: flags.timeout }),
          ...(metadata === undefined ? {} : { metadata }),
        });
        ctx.io.stdout(flags.json ? compactJson(response) : prettyJson(response));
        return EXIT_OK;
      })
    );
}
