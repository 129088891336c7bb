/**
 * Runs one member of the consensus cell until SIGINT/SIGTERM:
 *
 * ```sh
 * deno run -A cells/consensus/main.ts --id n1 --members n1,n2,n3   # by hand, one per member
 * cell deploy consensus cells/consensus/main.ts --instances 3       # under the nucleus
 * ```
 *
 * - `--id ID`: this member (default `$CELL_INSTANCE_ID`, which the nucleus sets); it serves on
 *   `$CELL_HOME/run/consensus@<id>.sock`.
 * - `--data DIR`: its write-ahead log (default `$CELL_HOME/data/consensus/<id>`, the instance's
 *   data directory under the nucleus).
 * - `--members a,b,c`: the initial members. Without it the members are found through the
 *   nucleus: the deployment's slots (`consensus-0` … `consensus-<n-1>`) when the cell is
 *   deployed, else the first `--expect` instances of the cell that register. The list found is
 *   kept in the data directory, so a restart needs no nucleus. Only a fresh log uses it: once a
 *   configuration is in the log, the log decides.
 *
 * It prints one line once it serves. On SIGTERM a leader first hands leadership to another
 * member, then every member stops serving and closes its log.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { cellHome, checkInstanceId, type Client, connect } from "@cell/sdk";
import { Nucleus, NUCLEUS_CELL } from "@cell/sdk/nucleus_api";
import { openWal } from "./wal.ts";
import { type Member, startMember } from "./member.ts";
import { CONSENSUS_CELL } from "./service.ts";
import type { MemberId } from "./types.ts";

const USAGE = "usage: main.ts [--id ID] [--data DIR] [--members a,b,c] [--expect N] " +
  "[--heartbeat-ms MS] [--election-timeout-ms MS]";

/** Reads an environment variable, or `undefined` when unset or not permitted. */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function fail(message: string): never {
  console.error(`consensus: ${message}\n${USAGE}`);
  Deno.exit(2);
}

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    fail(`--${name} must be a positive integer, not '${text}'`);
  }
  return n;
}

function parseMembers(text: string): MemberId[] {
  const ids = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const id of ids) {
    try {
      checkInstanceId(id);
    } catch (e) {
      fail((e as Error).message.replace("CELL_INSTANCE_ID", "--members"));
    }
  }
  if (ids.length === 0) fail("--members needs at least one member id, like n1,n2,n3");
  if (new Set(ids).size !== ids.length) fail(`--members lists a member twice: '${text}'`);
  return ids;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The members as the nucleus sees them: the deployment's slots, or the first `expect`
 * registered instances (waiting for them to register).
 */
async function membersFromNucleus(cell: string, id: MemberId, expect: number): Promise<MemberId[]> {
  let nucleus: Client<Nucleus>;
  try {
    nucleus = await connect<Nucleus>(NUCLEUS_CELL, {
      service: Nucleus,
      timeoutMs: 3000,
      connectTimeoutMs: 2000,
    });
  } catch {
    fail(
      "no --members given and no nucleus answers: pass --members a,b,c, or deploy with " +
        `\`cell deploy ${cell} cells/consensus/main.ts --instances 3\``,
    );
  }
  try {
    const { deployments } = await nucleus.deployments({});
    const deployed = deployments.find((d) => d.cell === cell);
    if (deployed && deployed.instances > 0) {
      // The nucleus names its slots <cell>-0 … <cell>-<n-1>.
      return Array.from({ length: deployed.instances }, (_, n) => `${cell}-${n}`);
    }
    for (let waited = 0;; waited += 200) {
      const ids = (await nucleus.discover({ cell, all: true })).instances
        .filter((i) => i.health !== "expired")
        .map((i) => i.instance_id).sort();
      if (ids.length >= expect) {
        const members = ids.slice(0, expect);
        if (members.includes(id)) return members;
        fail(
          `${expect} other instances of '${cell}' registered first: start this one with --members`,
        );
      }
      if (waited % 5000 === 0) {
        console.error(
          `consensus: ${id} waiting for ${expect} instances of '${cell}' (${ids.length} so far)`,
        );
      }
      await sleep(200);
    }
  } finally {
    await nucleus.$close();
  }
}

/** The initial members: `--members`, else the list kept from the first start, else the nucleus. */
async function initialMembers(
  flags: { members?: string | undefined; expect?: number | undefined },
  cell: string,
  id: MemberId,
  data: string,
): Promise<MemberId[]> {
  if (flags.members !== undefined) return parseMembers(flags.members);
  const kept = join(data, "members.json");
  try {
    return JSON.parse(await Deno.readTextFile(kept)) as MemberId[];
  } catch {
    // First start: ask the nucleus.
  }
  const members = await membersFromNucleus(cell, id, flags.expect ?? 3);
  const temp = `${kept}.tmp`;
  await Deno.writeTextFile(temp, JSON.stringify(members));
  await Deno.rename(temp, kept);
  return members;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        id: { type: "string" },
        data: { type: "string" },
        members: { type: "string" },
        expect: { type: "string" },
        "heartbeat-ms": { type: "string" },
        "election-timeout-ms": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const cell = CONSENSUS_CELL;
  const id = values.id ?? env("CELL_INSTANCE_ID") ??
    fail("no member id: pass --id ID (the nucleus sets CELL_INSTANCE_ID)");
  try {
    checkInstanceId(id);
  } catch (e) {
    fail((e as Error).message);
  }
  const data = values.data ?? join(cellHome(), "data", cell, id);
  await Deno.mkdir(data, { recursive: true, mode: 0o700 });
  const expect = positive("expect", values.expect);
  if (values.members !== undefined) parseMembers(values.members); // bad flags fail before serving
  const heartbeatMs = positive("heartbeat-ms", values["heartbeat-ms"]);
  const electionTimeoutMs = positive("election-timeout-ms", values["election-timeout-ms"]);

  const storage = await openWal(data);
  let member: Member;
  try {
    member = await startMember({
      id,
      members: () => initialMembers({ members: values.members, expect }, cell, id, data),
      storage,
      ...(heartbeatMs === undefined ? {} : { heartbeatMs }),
      ...(electionTimeoutMs === undefined ? {} : { electionTimeoutMs }),
    });
  } catch (e) {
    await storage.close().catch(() => {});
    throw e;
  }
  console.log(
    `consensus member ${id} serving on ${member.server.endpoints.join(", ")} ` +
      `(members ${member.node.status().members.join(",")}; data ${data})`,
  );

  // Leadership changes go to the log: `cell logs consensus` tells the cluster's story.
  let seen = "";
  const watch = setInterval(() => {
    const s = member.node.status();
    const now = `${s.role} term ${s.term} leader ${s.leader ?? "-"}`;
    if (now !== seen) console.error(`consensus: ${id} is ${now}`);
    seen = now;
  }, 250);

  const stopping = Promise.withResolvers<void>();
  const onSignal = () => stopping.resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await stopping.promise;
  // A second signal while stopping: stop now.
  Deno.addSignalListener("SIGTERM", () => Deno.exit(143));
  Deno.addSignalListener("SIGINT", () => Deno.exit(130));
  clearInterval(watch);
  await handOver(member);
  await member.stop();
  console.error(`consensus: ${id} stopped`);
}

/** A leader that stops hands leadership to the most caught-up follower first, if it can fast. */
async function handOver(member: Member): Promise<void> {
  const status = member.node.status();
  if (status.role !== "leader") return;
  const followers = status.members.filter((m) => m !== status.id)
    .sort((a, b) => (status.lag[a] ?? Infinity) - (status.lag[b] ?? Infinity));
  const to = followers[0];
  if (to === undefined) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    member.node.transferLeadership(to).catch(() => {}),
    new Promise((resolve) => timer = setTimeout(resolve, 1000)),
  ]);
  clearTimeout(timer);
}

if (import.meta.main) {
  await main();
  Deno.exit(0);
}
