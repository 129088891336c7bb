/**
 * `cell consensus status|members|get|put|delete`: read and write the consensus cell's
 * replicated key-value store, and see who leads.
 *
 * @module
 */
import type { Command } from "commander";
import { checkInstanceId, runDir } from "@cell/sdk";
import {
  connectConsensus,
  type ConsensusClient,
  type ConsensusClientOptions,
  type MemberReport,
} from "@cell/consensus";
import {
  act,
  compactJson,
  type Context,
  EXIT_FAILURE,
  EXIT_OK,
  homeOf,
  positiveInteger,
  type ReportOptions,
  UsageError,
} from "./_common.ts";

/** Flags of every `cell consensus` command. */
interface ConsensusFlags {
  members?: string;
  timeout?: number;
  json?: boolean;
}

const CELL = "consensus";

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd() + "\n")
    .join("");
}

function reportOptions(ctx: Context, flags: ConsensusFlags): ReportOptions {
  let socket: string | undefined;
  try {
    socket = `${runDir(homeOf(ctx))}/${CELL}@<id>.sock`;
  } catch {
    socket = undefined;
  }
  return { json: flags.json, cell: CELL, ...(socket === undefined ? {} : { socket }) };
}

function memberList(text: string): string[] {
  const ids = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (ids.length === 0) {
    throw new UsageError("--members needs at least one member id", [
      "example: cell consensus status --members consensus-0,consensus-1,consensus-2",
    ]);
  }
  for (const id of ids) {
    try {
      checkInstanceId(id);
    } catch (e) {
      throw new UsageError((e as Error).message.replace("CELL_INSTANCE_ID", "--members"));
    }
  }
  return ids;
}

async function open(ctx: Context, flags: ConsensusFlags): Promise<ConsensusClient> {
  const options: ConsensusClientOptions = {};
  if (flags.members !== undefined) options.members = memberList(flags.members);
  if (ctx.home !== undefined) options.home = ctx.home;
  if (flags.timeout !== undefined) {
    options.timeoutMs = flags.timeout;
    options.callTimeoutMs = Math.min(flags.timeout, 3000);
  }
  return await connectConsensus(options);
}

/** The status of every member as one JSON-friendly object. */
function statusJson(reports: MemberReport[]) {
  return {
    leader: leaderOf(reports),
    members: reports.map(({ id, status, error }) =>
      status
        ? {
          id,
          role: status.role,
          term: status.term,
          leader: status.leader,
          commit_index: status.commitIndex,
          applied_index: status.appliedIndex,
          last_index: status.lastIndex,
          members: status.members,
          lag: status.lag,
        }
        : { id, error: { code: error!.code, message: error!.message } }
    ),
  };
}

/** The leader a member in the highest term says it is, if any. */
function leaderOf(reports: MemberReport[]): string | null {
  const leaders = reports.flatMap((r) => r.status?.role === "leader" ? [r.status] : []);
  leaders.sort((a, b) => b.term - a.term);
  return leaders[0]?.id ?? null;
}

function formatStatus(reports: MemberReport[]): string {
  const leader = leaderOf(reports);
  const answered = reports.filter((r) => r.status).length;
  const rows = [["MEMBER", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "LAG"]];
  const leaderStatus = reports.find((r) => r.id === leader)?.status;
  for (const { id, status, error } of reports) {
    if (!status) {
      rows.push([id, "down", "-", "-", "-", "-", "-", error?.code ?? "-"]);
      continue;
    }
    const lag = leaderStatus?.lag[id];
    rows.push([
      id,
      status.role,
      String(status.term),
      status.leader ?? "-",
      String(status.commitIndex),
      String(status.appliedIndex),
      String(status.lastIndex),
      lag === undefined ? "-" : String(lag),
    ]);
  }
  const summary = leader === null
    ? `no leader (${answered} of ${reports.length} members answered)`
    : `leader ${leader} (${answered} of ${reports.length} members answered)`;
  const down = reports.filter((r) => r.error).map((r) => `  ${r.id}: ${r.error}\n`).join("");
  return `${summary}\n\n${table(rows)}${down ? `\n${down}` : ""}`;
}

function common(command: Command): Command {
  return command
    .option(
      "-m, --members <ids>",
      "member ids, comma-separated (default: the instances the nucleus knows, else the " +
        "sockets in $CELL_HOME/run)",
    )
    .option(
      "-t, --timeout <ms>",
      "longest wait in milliseconds, redirects to the leader and elections included",
      positiveInteger("--timeout"),
    );
}

/** Adds `cell consensus` and its subcommands to `program`. */
export function registerConsensus(program: Command, ctx: Context): void {
  const consensus = program
    .command("consensus")
    .summary("the replicated key-value store: status, members, get, put, delete")
    .description(
      "Talk to the consensus cell: a Raft cluster (usually 3 or 5 members) that keeps a " +
        "key-value store consistent. Writes go to the leader (the command follows the members' " +
        "hints and waits out elections); reads are linearizable unless --stale. The members " +
        "are the instances of 'consensus' the nucleus knows, or the sockets " +
        "$CELL_HOME/run/consensus@<id>.sock; --members names them.",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ cell deploy consensus cells/consensus/main.ts --instances 3
  $ cell consensus status
  $ cell consensus put greeting hello
  $ cell consensus get greeting
  $ cell consensus members --json`,
    );

  common(
    consensus
      .command("status")
      .summary("each member's role, term, leader and log indexes; exit 1 without a leader")
      .description(
        "Ask every member for its status: role (leader, follower, candidate), term, the leader " +
          "it knows, its commit, applied and last log indexes, and, from the leader, how many " +
          "entries each follower lags. Members that do not answer are listed as down. Exits 0 " +
          "when a leader answered and a majority of the members did.",
      ),
  )
    .option("--json", "print one line: {leader, members: [{id, role, term, ...} | {id, error}]}")
    .addHelpText(
      "after",
      `
Examples:
  $ cell consensus status
  $ cell consensus status --json | jq -r .leader`,
    )
    .action((flags: ConsensusFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        await using client = await open(ctx, flags);
        const reports = await client.statuses(
          flags.timeout === undefined ? {} : { timeoutMs: flags.timeout },
        );
        ctx.io.stdout(flags.json ? compactJson(statusJson(reports)) : formatStatus(reports));
        const answered = reports.filter((r) => r.status).length;
        return leaderOf(reports) !== null && answered * 2 > reports.length ? EXIT_OK : EXIT_FAILURE;
      })
    );

  common(
    consensus
      .command("members")
      .summary("the voting members and the leader")
      .description("Print the voting members, as the cluster's configuration says, one per line."),
  )
    .option("--json", "print one line: {members, leader}")
    .action((flags: ConsensusFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        await using client = await open(ctx, flags);
        const answer = await client.members(
          flags.timeout === undefined ? {} : { timeoutMs: flags.timeout },
        );
        ctx.io.stdout(
          flags.json ? compactJson(answer) : answer.members
            .map((m) => `${m}${m === answer.leader ? " (leader)" : ""}\n`).join(""),
        );
        return EXIT_OK;
      })
    );

  common(
    consensus
      .command("get")
      .summary("print the value of a key; exit 1 when absent")
      .description(
        "Read <key>. By default the read is linearizable: it reflects every write acknowledged " +
          "before it started. --stale answers from one member's state at once, which may lag.",
      )
      .argument("<key>", "the key"),
  )
    .option("--stale", "read from any member's state, without confirming with the leader")
    .option("--json", "print one line: {key, value, index} (value null when absent)")
    .addHelpText(
      "after",
      `
Examples:
  $ cell consensus get greeting
  $ cell consensus get greeting --stale --json

Exit codes: 0 found, 1 absent or the cluster did not answer, 2 bad command line.`,
    )
    .action((key: string, flags: ConsensusFlags & { stale?: boolean }) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        await using client = await open(ctx, flags);
        const { value, index } = await client.read(
          { key, stale: flags.stale ?? false },
          flags.timeout === undefined ? {} : { timeoutMs: flags.timeout },
        );
        if (flags.json) ctx.io.stdout(compactJson({ key, value, index }));
        else if (value === null) ctx.io.stderr(`key '${key}' is absent (at index ${index})\n`);
        else ctx.io.stdout(`${value}\n`);
        return value === null ? EXIT_FAILURE : EXIT_OK;
      })
    );

  common(
    consensus
      .command("put")
      .summary("set a key; returns once a majority stored it")
      .description(
        "Set <key> to <value> through the leader. It returns once the write is committed (on a " +
          "majority of members' disks) and applied.",
      )
      .argument("<key>", "the key")
      .argument("<value>", "the value (a string)"),
  )
    .option("--json", "print one line: {key, index, previous} (previous null when absent)")
    .addHelpText(
      "after",
      `
Examples:
  $ cell consensus put greeting hello
  $ cell consensus put config/limit 10 --json`,
    )
    .action((key: string, value: string, flags: ConsensusFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        await using client = await open(ctx, flags);
        const result = await client.write(
          { key, value },
          flags.timeout === undefined ? {} : { timeoutMs: flags.timeout },
        );
        ctx.io.stdout(
          flags.json
            ? compactJson({ key, index: result.index, previous: result.previous })
            : `ok: '${key}' set at index ${result.index}\n`,
        );
        return EXIT_OK;
      })
    );

  common(
    consensus
      .command("delete")
      .summary("remove a key")
      .description("Remove <key> through the leader; removing an absent key succeeds.")
      .argument("<key>", "the key"),
  )
    .option("--json", "print one line: {key, index, previous}")
    .action((key: string, flags: ConsensusFlags) =>
      act(ctx, reportOptions(ctx, flags), async () => {
        await using client = await open(ctx, flags);
        const result = await client.delete(
          { key },
          flags.timeout === undefined ? {} : { timeoutMs: flags.timeout },
        );
        ctx.io.stdout(
          flags.json
            ? compactJson({ key, index: result.index, previous: result.previous })
            : `ok: '${key}' ${result.previous === null ? "was absent" : "removed"} ` +
              `(index ${result.index})\n`,
        );
        return EXIT_OK;
      })
    );
}
