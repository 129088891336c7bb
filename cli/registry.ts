/**
 * `cell health`, `cell topology` and `cell discover <cell>`: what the nucleus knows about the
 * instances running on this host (and, later, others).
 *
 * @module
 */
import type { Command } from "commander";
import type { Infer } from "@cell/sdk";
import type { HealthReport, Instance, Topology } from "@cell/sdk/nucleus_api";
import { act, compactJson, type Context, EXIT_FAILURE, EXIT_OK, UsageError } from "./_common.ts";
import { connectNucleus, type NucleusFlags, reportOptions, timeoutOption } from "./_nucleus.ts";
import { checkCellName } from "@cell/sdk";

type InstanceInfo = Infer<typeof Instance>;

/** Throws a usage error unless `cell` is a valid cell name. */
export function cellArgument(cell: string): string {
  try {
    checkCellName(cell);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return cell;
}

function ago(ms: number, now = Date.now()): string {
  const seconds = Math.max(0, (now - ms) / 1000);
  return seconds < 60 ? `${seconds.toFixed(1)}s ago` : `${Math.round(seconds / 60)}m ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd() + "\n")
    .join("");
}

/** Instances as a table: cell, instance, pid, health, last heartbeat, endpoint. */
export function formatInstances(instances: readonly InstanceInfo[]): string {
  if (instances.length === 0) return "";
  return table([
    ["CELL", "INSTANCE", "NODE", "PID", "HEALTH", "HEARTBEAT", "IN FLIGHT", "ENDPOINT"],
    ...instances.map((i) => [
      i.cell,
      i.instance_id,
      i.node_id,
      String(i.pid),
      i.health,
      ago(i.last_heartbeat_ms),
      String(i.in_flight),
      i.endpoints[0] ? `${i.endpoints[0].transport}:${i.endpoints[0].address}` : "-",
    ]),
  ]);
}

/** A health report as text: the overall status, then cells and hosts. */
export function formatHealth(report: Infer<typeof HealthReport>): string {
  let text = `status: ${report.status}\n`;
  if (report.cells.length > 0) {
    text += "\n" + table([
      ["CELL", "STATUS", "HEALTHY", "UNHEALTHY", "DESIRED"],
      ...report.cells.map((c) => [
        c.cell,
        c.status,
        String(c.healthy),
        String(c.unhealthy),
        c.desired === 0 ? "-" : String(c.desired),
      ]),
    ]);
  } else {
    text += "no cells registered or deployed\n";
  }
  text += "\n" + table([
    ["HOST", "STATUS", "CELLS", "INSTANCES", "HEALTHY"],
    ...report.hosts.map((h) => [
      h.node_id,
      h.status,
      String(h.cells),
      String(h.instances),
      String(h.healthy),
    ]),
  ]);
  return text;
}

/** A topology as text: each host and its instances. */
export function formatTopology(topology: Infer<typeof Topology>): string {
  return topology.hosts.map((host) => {
    const self = host.node_id === topology.node_id ? " (this host)" : "";
    const count = `${host.instances.length} instance${host.instances.length === 1 ? "" : "s"}`;
    const rows = formatInstances(host.instances).replace(/^(?=.)/gm, "  ");
    return `node ${host.node_id}${self}: ${count}\n${rows}`;
  }).join("\n");
}

/** Adds `cell health`, `cell topology` and `cell discover` to `program`. */
export function registerRegistryCommands(program: Command, ctx: Context): void {
  timeoutOption(
    program
      .command("health")
      .summary("health of the cells and hosts the nucleus knows; exit 1 unless healthy")
      .description(
        "Ask the nucleus for the health of every cell registered or deployed on this host.\n\n" +
          "A cell is healthy when all its instances heartbeat as healthy and it has as many " +
          "as its deployment wants, degraded when some are missing or unhealthy, down with no " +
          "healthy instance. The exit code is 0 only when everything is healthy, so scripts " +
          "and probes can use it directly.",
      ),
  )
    .option("--json", "print the report as one line of JSON: {status, cells, hosts}")
    .addHelpText(
      "after",
      `
Examples:
  $ cell health
  $ cell health --json | jq -r '.cells[] | "\\(.cell) \\(.status)"'
  $ cell health >/dev/null || echo "something is down"

Exit codes: 0 healthy, 1 degraded or down (or no nucleus), 2 bad command line.`,
    )
    .action((flags: NucleusFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        await using nucleus = await connectNucleus(ctx, flags);
        const report = await nucleus.health({});
        ctx.io.stdout(flags.json ? compactJson(report) : formatHealth(report));
        return report.status === "healthy" ? EXIT_OK : EXIT_FAILURE;
      })
    );

  timeoutOption(
    program
      .command("topology")
      .summary("every host the nucleus knows and the instances on each")
      .description(
        "Print each host (node id) with the instances registered on it: cell, instance id, " +
          "pid, health, last heartbeat and endpoint. This host comes first.",
      ),
  )
    .option("--json", "print one line of JSON: {node_id, hosts: [{node_id, instances}]}")
    .addHelpText(
      "after",
      `
Examples:
  $ cell topology
  $ cell topology --json | jq '.hosts[].instances | length'`,
    )
    .action((flags: NucleusFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        await using nucleus = await connectNucleus(ctx, flags);
        const topology = await nucleus.topology({});
        ctx.io.stdout(flags.json ? compactJson(topology) : formatTopology(topology));
        return EXIT_OK;
      })
    );

  timeoutOption(
    program
      .command("discover")
      .summary("list the instances of a cell, as clients find them")
      .description(
        "Ask the nucleus which instances of <cell> clients would call: the healthy ones, or " +
          "with --all also those starting, unhealthy or expired.",
      )
      .argument("<cell>", "name of the cell, for example my-service"),
  )
    .option("-a, --all", "include instances that are starting, unhealthy or expired")
    .option(
      "--json",
      "print one line of JSON: {version, instances: [{instance_id, pid, health, ...}]}",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ cell discover my-service
  $ cell discover my-service --all
  $ cell discover my-service --json | jq -r '.instances[].instance_id'

Exit codes: 0 at least one instance listed, 1 none (or no nucleus), 2 bad command line.`,
    )
    .action((cell: string, flags: NucleusFlags & { all?: boolean }) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        cellArgument(cell);
        await using nucleus = await connectNucleus(ctx, flags);
        const found = await nucleus.discover({ cell, all: flags.all ?? false });
        if (flags.json) {
          ctx.io.stdout(compactJson(found));
        } else if (found.instances.length === 0) {
          ctx.io.stderr(
            `no ${flags.all ? "" : "healthy "}instances of '${cell}'` +
              `${flags.all ? "" : " (try --all)"}: deploy it with 'cell deploy ${cell} ` +
              "<module>', or start a process that serves it\n",
          );
        } else {
          ctx.io.stdout(formatInstances(found.instances));
        }
        return found.instances.length > 0 ? EXIT_OK : EXIT_FAILURE;
      })
    );
}
