/**
 * `cell nucleus`: runs this host's nucleus in the foreground.
 *
 * @module
 */
import type { Command } from "commander";
import { runNucleus } from "@cell/nucleus";
import { act, compactJson, type Context, homeOf, positiveInteger } from "./_common.ts";

/** Flags of `cell nucleus`. */
interface NucleusCommandFlags {
  heartbeatMs?: number;
  maxMissed?: number;
  nodeId?: string;
  json?: boolean;
}

/** Adds `cell nucleus` to `program`. */
export function registerNucleus(program: Command, ctx: Context): void {
  program
    .command("nucleus")
    .summary("run this host's nucleus in the foreground (registry, health, deployments)")
    .description(
      "Run the nucleus of the Cell home until SIGINT or SIGTERM. The nucleus is the one-per-" +
        "host manager: cells served with the SDK register with it and heartbeat, clients " +
        "discover instances through it, and it runs the processes of deployed cells " +
        "('cell deploy'), restarting them when they crash.\n\n" +
        "It serves on $CELL_HOME/run/nucleus.sock and holds $CELL_HOME/run/nucleus.lock: a " +
        "second nucleus on the same home exits with an error naming the first one's pid. On " +
        "SIGINT/SIGTERM it stops the deployed cells' processes and exits 0. It prints one " +
        "line once it serves, then logs to stderr.",
    )
    .option(
      "--heartbeat-ms <ms>",
      "heartbeat interval handed to instances (default 1000)",
      positiveInteger("--heartbeat-ms"),
    )
    .option(
      "--max-missed <n>",
      "heartbeats an instance may miss before it expires (default 3)",
      positiveInteger("--max-missed"),
    )
    .option("--node-id <id>", "this host's node id (default: config.json, $CELL_NODE_ID, hostname)")
    .option("--json", 'print the ready line as JSON: {"serving":[endpoints],"node_id","pid"}')
    .addHelpText(
      "after",
      `
Examples:
  $ cell nucleus
  $ cell nucleus --heartbeat-ms 500 --max-missed 4
  $ CELL_HOME=/srv/cell cell nucleus &
  $ cell --home /srv/cell health

Exit codes: 0 stopped by SIGINT/SIGTERM, 1 could not start (another nucleus runs on this
home, ...), 2 bad command line.`,
    )
    .action((flags: NucleusCommandFlags) =>
      act(ctx, { json: flags.json, cell: "nucleus" }, async () => {
        const home = homeOf(ctx);
        return await runNucleus({
          home,
          ...(flags.heartbeatMs === undefined ? {} : { heartbeatIntervalMs: flags.heartbeatMs }),
          ...(flags.maxMissed === undefined ? {} : { maxMissed: flags.maxMissed }),
          ...(flags.nodeId === undefined ? {} : { nodeId: flags.nodeId }),
          log: (message) => ctx.io.stderr(`nucleus: ${message}\n`),
          ready: (line, nucleus) => {
            ctx.io.stdout(
              flags.json
                ? compactJson({
                  serving: nucleus.server.endpoints,
                  node_id: nucleus.nodeId,
                  pid: Deno.pid,
                })
                : `${line}\n`,
            );
          },
        });
      })
    );
}
