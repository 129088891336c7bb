// What the nucleus commands share: a client of this home's nucleus, with a clear error when
// none runs.
import { CellError, type Client, connect, socketPath } from "@cell/sdk";
import { Nucleus, NUCLEUS_CELL } from "@cell/sdk/nucleus_api";
import type { Command } from "commander";
import { type Context, homeOf, positiveInteger, type ReportOptions } from "./_common.ts";

/** Flags of every command that talks to the nucleus. */
export interface NucleusFlags {
  timeout?: number;
  json?: boolean;
}

/** How errors of a nucleus command are reported: hints point at the nucleus's socket. */
export function reportOptions(ctx: Context, flags: NucleusFlags): ReportOptions {
  let socket: string | undefined;
  try {
    socket = socketPath(NUCLEUS_CELL, homeOf(ctx));
  } catch {
    socket = undefined;
  }
  return { json: flags.json, cell: NUCLEUS_CELL, ...(socket === undefined ? {} : { socket }) };
}

/** Connects to the nucleus of this run's Cell home; `UNAVAILABLE` says to start one. */
export async function connectNucleus(
  ctx: Context,
  flags: NucleusFlags,
): Promise<Client<typeof Nucleus>> {
  const home = homeOf(ctx);
  try {
    return await connect<typeof Nucleus>(NUCLEUS_CELL, {
      service: Nucleus,
      address: socketPath(NUCLEUS_CELL, home),
      transport: "uds",
      peer: "cell-cli",
      ...(flags.timeout === undefined
        ? {}
        : { timeoutMs: flags.timeout, connectTimeoutMs: Math.min(flags.timeout, 5000) }),
    });
  } catch (e) {
    if (e instanceof CellError && e.code === "UNAVAILABLE") {
      throw new CellError(
        "UNAVAILABLE",
        `No nucleus on ${home}: start one with \`cell nucleus\` (or \`cell --home ${home} ` +
          "nucleus`), or point --home / CELL_HOME at the home where one runs",
        { cause: e },
      );
    }
    throw e;
  }
}

/** Adds `--timeout <ms>`, the deadline of the call to the nucleus, to `command`. */
export function timeoutOption(command: Command): Command {
  return command.option(
    "-t, --timeout <ms>",
    "deadline of the call to the nucleus in milliseconds",
    positiveInteger("--timeout"),
  );
}
