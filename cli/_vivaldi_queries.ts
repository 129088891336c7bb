// `cell vivaldi status` and `cell vivaldi route <cell>`: questions to this host's Vivaldi cell.
import type { Command } from "commander";
import { CellError, type Client, connect, type Infer } from "@cell/sdk";
import { type Routes, type Status, Vivaldi, VIVALDI_CELL } from "@cell/vivaldi";
import {
  act,
  compactJson,
  type Context,
  EXIT_FAILURE,
  EXIT_OK,
  positiveInteger,
} from "./_common.ts";
import { cellArgument } from "./registry.ts";
import { timeoutOption } from "./_nucleus.ts";

interface QueryFlags {
  timeout?: number;
  json?: boolean;
  max?: number;
}

async function connectVivaldi(ctx: Context, flags: QueryFlags): Promise<Client<typeof Vivaldi>> {
  try {
    return await connect<typeof Vivaldi>(VIVALDI_CELL, {
      service: Vivaldi,
      ...(ctx.home === undefined ? {} : { home: ctx.home }),
      peer: "cell-cli",
      ...(flags.timeout === undefined
        ? {}
        : { timeoutMs: flags.timeout, connectTimeoutMs: Math.min(flags.timeout, 5000) }),
    });
  } catch (e) {
    if (e instanceof CellError && e.code === "UNAVAILABLE") {
      throw new CellError(
        "UNAVAILABLE",
        "No Vivaldi cell answers on this host: start one with `deno run -A " +
          "cells/vivaldi/main.ts` (the nucleus must run), or deploy it with `cell deploy vivaldi " +
          "cells/vivaldi/main.ts`",
        { cause: e },
      );
    }
    throw e;
  }
}

const ms = (seconds: number) => `${(seconds * 1000).toFixed(3)} ms`;

/** The Vivaldi cell's status as text. */
export function formatStatus(status: Infer<typeof Status>): string {
  const c = status.coordinate;
  return [
    `node          ${status.node_id}`,
    `instance      ${status.instance_id}`,
    `height        ${ms(c.height)}`,
    `adjustment    ${ms(c.adjustment)}`,
    `error         ${c.error.toFixed(3)}`,
    `vec (ms)      ${c.vec.map((x) => (x * 1000).toFixed(3)).join(" ")}`,
    `peers         ${status.peers}`,
    `samples       ${status.samples}`,
    `resets        ${status.resets}`,
  ].map((line) => line + "\n").join("");
}

/** Routes as a table: instance, node, estimated RTT, endpoint. */
export function formatRoutes(routes: Infer<typeof Routes>["routes"]): string {
  const rows = [
    ["INSTANCE", "NODE", "RTT", "ENDPOINT"],
    ...routes.map(({ instance: i, rtt_ms }) => [
      i.instance_id,
      i.node_id,
      rtt_ms === undefined ? "-" : `${rtt_ms.toFixed(3)} ms`,
      i.endpoints[0] ? `${i.endpoints[0].transport}:${i.endpoints[0].address}` : "-",
    ]),
  ];
  const widths = rows[0]!.map((_, k) => Math.max(...rows.map((r) => r[k]!.length)));
  return rows.map((r) => r.map((c, k) => c.padEnd(widths[k]!)).join("  ").trimEnd() + "\n")
    .join("");
}

/** Adds `status` and `route <cell>` to the `cell vivaldi` command. */
export function registerVivaldiQueries(vivaldi: Command, ctx: Context): void {
  const report = (flags: QueryFlags) => ({ json: flags.json, cell: VIVALDI_CELL });
  timeoutOption(
    vivaldi
      .command("status")
      .summary("this host's coordinate and how it is measured")
      .description(
        "Ask this host's Vivaldi cell for the host's coordinate (height, adjustment, error, " +
          "vector), how many peers it pings and how many RTT samples it folded in.",
      ),
  )
    .option("--json", "print one line: {node_id, instance_id, coordinate, peers, samples, resets}")
    .addHelpText(
      "after",
      `
Examples:
  $ cell vivaldi status
  $ cell vivaldi status --json | jq .coordinate.height`,
    )
    .action((flags: QueryFlags) =>
      act(ctx, report(flags), async () => {
        await using client = await connectVivaldi(ctx, flags);
        const status = await client.status({});
        ctx.io.stdout(flags.json ? compactJson(status) : formatStatus(status));
        return EXIT_OK;
      })
    );
  timeoutOption(
    vivaldi
      .command("route")
      .summary("the instances of a cell, nearest first by estimated RTT")
      .description(
        "Ask this host's Vivaldi cell to rank the healthy instances of <cell> by the RTT " +
          "estimated from this host's coordinate to theirs (an instance that measures none " +
          "is placed at its host). Instances with no coordinate at all come last.",
      )
      .argument("<cell>", "name of the cell, for example my-service"),
  )
    .option("-n, --max <k>", "list at most k instances", positiveInteger("--max"))
    .option("--json", "print one line: {source, routes: [{instance, rtt_ms}]}")
    .addHelpText(
      "after",
      `
Examples:
  $ cell vivaldi route my-service
  $ cell vivaldi route my-service --max 3 --json | jq -r '.routes[].instance.instance_id'

Exit codes: 0 at least one instance listed, 1 none (or no Vivaldi cell), 2 bad command line.`,
    )
    .action((cell: string, flags: QueryFlags) =>
      act(ctx, report(flags), async () => {
        cellArgument(cell);
        await using client = await connectVivaldi(ctx, flags);
        const answer = await client.route({
          target_cell: cell,
          ...(flags.max === undefined ? {} : { max_results: flags.max }),
        });
        if (flags.json) ctx.io.stdout(compactJson(answer));
        else if (answer.routes.length === 0) ctx.io.stderr(`no healthy instances of '${cell}'\n`);
        else ctx.io.stdout(formatRoutes(answer.routes));
        return answer.routes.length > 0 ? EXIT_OK : EXIT_FAILURE;
      })
    );
}
