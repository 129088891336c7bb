/**
 * The `cell` command line: set up a node (`cell init`), call a running cell (`cell call`),
 * read what it serves (`cell schema`) and time it (`cell ping`).
 *
 * {@linkcode run} runs a command line in this process and returns its exit code, writing
 * through a {@linkcode CliIo}, so that programs and tests can use the CLI without a subprocess.
 * `main.ts` is the executable: `deno task cell --help`.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { run } from "@cell/cli";
 *
 * let out = "";
 * const code = await run(["--version"], { stdout: (t) => out += t, stderr: () => {} });
 * assert.ok(code === 0 && out.trim() === "0.1.0");
 * ```
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { cellHome } from "@cell/sdk";
import { type Context, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./_common.ts";
import { type CliIo, denoIo } from "./io.ts";
import { registerCall } from "./call.ts";
import { registerConsensus } from "./consensus.ts";
import { registerGenerate } from "./generate.ts";
import { registerVivaldi } from "./vivaldi.ts";
import { registerInit } from "./init.ts";
import { registerLifecycle } from "./lifecycle.ts";
import { registerNucleus } from "./nucleus.ts";
import { registerRegistryCommands } from "./registry.ts";
import { registerPing } from "./ping.ts";
import { registerSchema } from "./schema.ts";
import { VERSION } from "./version.ts";

export { type CliIo, denoIo } from "./io.ts";
export {
  InitConflictError,
  initHome,
  type InitOptions,
  type InitResult,
  type NodeConfig,
  parseNodeId,
} from "./init.ts";
export { parsePayload } from "./payload.ts";
export { formatSchema, formatType } from "./schema.ts";
export { VERSION } from "./version.ts";

const DESCRIPTION = "Cell is a Deno-first TypeScript RPC toolkit. A cell is a process that " +
  "serves typed methods, each taking and returning a typed message (a protein), on a Unix " +
  "socket at $CELL_HOME/run/<cell>.sock; clients in any language call it by name. This " +
  "command sets up a node's Cell home and identity, and calls, inspects and pings running " +
  "cells from the shell.";

function homeNow(): string {
  try {
    return cellHome();
  } catch {
    return "unset";
  }
}

function epilogue(): string {
  return `
Examples:
  $ cell init --node-id 1
  $ cell call my-service greet '{"name":"World"}'
  $ echo '{"name":"World"}' | cell call my-service greet --json
  $ cell schema my-service
  $ cell ping my-service --count 3

Environment:
  CELL_HOME  where Cell keeps its files: config.json, identity/, and the cells' sockets
             in run/ (default: ~/.cell; now: ${homeNow()}). --home overrides it.

Exit codes:
  0  success
  1  the command failed: the call returned an error, the cell is unreachable, ...
  2  usage error: unknown command or option, bad argument, invalid JSON payload

Run 'cell <command> --help' for a command's options and examples.`;
}

/** Builds the commander program of one run; actions record their exit code in `ctx`. */
function createProgram(ctx: Context): Command {
  const program = new Command("cell")
    .usage("<command> [options]")
    .description(DESCRIPTION)
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help (also: cell <command> --help)")
    .helpCommand("help [command]", "show help for a command")
    .option("--home <dir>", "use this Cell home instead of $CELL_HOME")
    .hook("preAction", (command) => {
      const home: unknown = command.opts().home;
      if (typeof home === "string") ctx.home = home;
    })
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout(text),
      writeErr: (text) => ctx.io.stderr(text),
    })
    .showHelpAfterError("(run 'cell --help' or 'cell <command> --help' for usage)")
    .addHelpText("after", epilogue());
  // Subcommands made with .command() inherit exitOverride and the output configuration.
  registerInit(program, ctx);
  registerCall(program, ctx);
  registerSchema(program, ctx);
  registerGenerate(program, ctx);
  registerVivaldi(program, ctx);
  registerPing(program, ctx);
  registerNucleus(program, ctx);
  registerLifecycle(program, ctx);
  registerRegistryCommands(program, ctx);
  registerConsensus(program, ctx);
  return program;
}

/**
 * Runs the `cell` command line `args` (without the program name) in this process and returns
 * its exit code: 0 for success, 1 for a failed command, 2 for a usage error. It never exits
 * the process; output goes through `io`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { run } from "@cell/cli";
 *
 * let err = "";
 * const code = await run(["call", "my-service", "greet", "{name:1}"], {
 *   stdout: () => {},
 *   stderr: (t) => err += t,
 * });
 * assert.ok(code === 2 && err.includes("not valid JSON"));
 * ```
 */
export async function run(args: string[], io: CliIo = denoIo()): Promise<number> {
  const ctx: Context = { io, exitCode: EXIT_OK };
  const program = createProgram(ctx);
  try {
    await program.parseAsync(args, { from: "user" });
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version "exit" 0; help shown because no command was given exits 1 in
      // commander, which is a usage error here, like every other parse error.
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    io.stderr(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILURE;
  }
}
