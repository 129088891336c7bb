/**
 * `cell deploy`, `cell scale`, `cell stop` and `cell logs`: the lifecycle of cell processes
 * supervised by the nucleus.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import type { Infer } from "@cell/sdk";
import type { Deployment, LogLine } from "@cell/sdk/nucleus_api";
import { act, compactJson, type Context, EXIT_OK, positiveInteger } from "./_common.ts";
import { connectNucleus, type NucleusFlags, reportOptions, timeoutOption } from "./_nucleus.ts";
import { cellArgument } from "./registry.ts";

/** Flags of `cell deploy`. */
interface DeployFlags extends NucleusFlags {
  instances: number;
  sandbox: boolean;
  arg?: string[];
}

function count(what: string): (text: string) => number {
  return (text) => {
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n > 10_000) {
      throw new InvalidArgumentError(`${what} must be an integer from 0 to 10000, like 3.`);
    }
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...previous ?? [], value];
}

/** Where the nucleus finds `module`: URLs as they are, paths made absolute from here. */
export function moduleLocation(module: string, cwd: string = Deno.cwd()): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(module)) return module;
  return isAbsolute(module) ? module : resolve(cwd, module);
}

/** A deployment as text: what runs, in which sandbox, and each instance's state. */
export function formatDeployment(deployment: Infer<typeof Deployment>, verb: string): string {
  const d = deployment;
  let text = `${d.cell}: ${verb}, ${d.instances} instance${d.instances === 1 ? "" : "s"} of ` +
    `${d.module}\nsandbox: ${d.sandbox === "none" ? "none (no isolation)" : d.sandbox}\n`;
  if (d.permissions.length > 0) text += `permissions: ${d.permissions.join(" ")}\n`;
  for (const s of d.status) {
    const exit = s.last_exit_code === undefined ? "" : `, last exit ${s.last_exit_code}`;
    const error = s.last_error === undefined ? "" : ` (${s.last_error})`;
    text += `  ${s.instance_id}  pid ${s.pid}  ${s.state}, ${s.restarts} restarts${exit}${error}\n`;
  }
  return text;
}

/** A log line as text: `<instance> <stream> | <line>`. */
export function formatLogLine(line: Infer<typeof LogLine>): string {
  return `${line.instance_id} ${line.stream === "stderr" ? "err" : "out"} | ${line.line}\n`;
}

/** Adds `cell deploy`, `cell scale`, `cell stop` and `cell logs` to `program`. */
export function registerLifecycle(program: Command, ctx: Context): void {
  timeoutOption(
    program
      .command("deploy")
      .summary("run a cell module as supervised processes of the nucleus")
      .description(
        "Ask the nucleus to run <instances> processes of <module> as the cell <cell>, restart " +
          "them when they crash (with backoff), and keep them running across nucleus restarts." +
          "\n\nEach process runs in a bubblewrap sandbox when bwrap is installed (the output " +
          "says which sandbox was used), gets CELL_HOME, CELL_INSTANCE_ID and CELL_NODE_ID, " +
          "and registers itself through the SDK. Deploying a cell again replaces it.",
      )
      .argument("<cell>", "name of the cell, for example my-service")
      .argument("<module>", "its main module: a path (relative to here) or a URL"),
  )
    .option("-n, --instances <n>", "how many processes to run", count("--instances"), 1)
    .option("--no-sandbox", "run without bubblewrap (development only: no isolation)")
    .option("--arg <value>", "an argument for the module (repeatable)", collect)
    .option("--json", "print the deployment as one line of JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ cell deploy my-service examples/my_service/main.ts
  $ cell deploy my-service examples/my_service/main.ts --instances 3
  $ cell deploy my-service ./main.ts --no-sandbox --arg --verbose
  $ cell deploy my-service ./main.ts --json | jq -r .sandbox

Then: 'cell discover my-service', 'cell logs my-service', 'cell scale my-service 5',
'cell stop my-service'. A nucleus must run: 'cell nucleus'.`,
    )
    .action((cell: string, module: string, flags: DeployFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        cellArgument(cell);
        await using nucleus = await connectNucleus(ctx, flags);
        const deployment = await nucleus.deploy({
          cell,
          module: moduleLocation(module),
          instances: flags.instances,
          sandbox: flags.sandbox,
          ...(flags.arg === undefined ? {} : { args: flags.arg }),
        });
        ctx.io.stdout(
          flags.json ? compactJson(deployment) : formatDeployment(deployment, "deployed"),
        );
        return EXIT_OK;
      })
    );

  timeoutOption(
    program
      .command("scale")
      .summary("change how many processes a deployed cell runs")
      .description(
        "Ask the nucleus to run <instances> processes of the deployed cell <cell>, starting " +
          "or stopping some. 0 stops them all but keeps the deployment.",
      )
      .argument("<cell>", "name of a deployed cell")
      .argument("<instances>", "how many processes to run", count("<instances>")),
  )
    .option("--json", "print the deployment as one line of JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ cell scale my-service 5
  $ cell scale my-service 0`,
    )
    .action((cell: string, instances: number, flags: NucleusFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        cellArgument(cell);
        await using nucleus = await connectNucleus(ctx, flags);
        const deployment = await nucleus.scale({ cell, instances });
        ctx.io.stdout(
          flags.json ? compactJson(deployment) : formatDeployment(deployment, "scaled"),
        );
        return EXIT_OK;
      })
    );

  timeoutOption(
    program
      .command("stop")
      .summary("stop a deployed cell's processes and forget its deployment")
      .description(
        "Ask the nucleus to stop every process of the deployed cell <cell> (SIGTERM, then " +
          "SIGKILL if it does not exit) and forget the deployment.",
      )
      .argument("<cell>", "name of a deployed cell"),
  )
    .option("--json", "print the final deployment as one line of JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ cell stop my-service`,
    )
    .action((cell: string, flags: NucleusFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        cellArgument(cell);
        await using nucleus = await connectNucleus(ctx, flags);
        const deployment = await nucleus.stop({ cell });
        ctx.io.stdout(
          flags.json ? compactJson(deployment) : formatDeployment(deployment, "stopped"),
        );
        return EXIT_OK;
      })
    );

  timeoutOption(
    program
      .command("logs")
      .summary("print what a deployed cell's processes wrote to stdout and stderr")
      .description(
        "Print the captured output of the deployed cell <cell>'s processes, oldest first, " +
          "each line prefixed with its instance id and stream.",
      )
      .argument("<cell>", "name of a deployed cell"),
  )
    .option("-i, --instance <id>", "only this instance (see 'cell discover <cell>')")
    .option("-n, --tail <n>", "only the last <n> lines", positiveInteger("--tail"))
    .option("--json", "print one line of JSON: {lines: [{instance_id, stream, at_ms, line}]}")
    .addHelpText(
      "after",
      `
Examples:
  $ cell logs my-service
  $ cell logs my-service --tail 20
  $ cell logs my-service --instance my-service-1 --json | jq -r '.lines[].line'`,
    )
    .action((cell: string, flags: NucleusFlags & { instance?: string; tail?: number }) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        cellArgument(cell);
        await using nucleus = await connectNucleus(ctx, flags);
        const { lines } = await nucleus.logs({
          cell,
          ...(flags.instance === undefined ? {} : { instance_id: flags.instance }),
          ...(flags.tail === undefined ? {} : { tail: flags.tail }),
        });
        ctx.io.stdout(flags.json ? compactJson({ lines }) : lines.map(formatLogLine).join(""));
        return EXIT_OK;
      })
    );
}
