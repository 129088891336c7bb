// Where a client finds the members of a consensus cluster when it is not told: the instances the
// nucleus knows, else the instance sockets in `run/`.
import { NucleusClient, runDir } from "@cell/sdk";
import { join } from "node:path";
import type { MemberId } from "./types.ts";

/** Member ids and their socket paths; empty when nothing is found. */
export async function findMembers(
  cell: string,
  home: string | undefined,
): Promise<Map<MemberId, string>> {
  const found = new Map<MemberId, string>();
  try {
    await using nucleus = await NucleusClient.connect({
      ...(home === undefined ? {} : { home }),
      timeoutMs: 2000,
    });
    for (const i of (await nucleus.discover(cell)).instances) {
      const uds = i.endpoints.find((e) => e.transport === "uds");
      if (uds) found.set(i.instance_id, uds.address);
    }
  } catch {
    // No nucleus: look for the members' sockets instead.
  }
  if (found.size > 0) return found;
  try {
    const prefix = `${cell}@`;
    for await (const entry of Deno.readDir(runDir(home))) {
      if (entry.name.startsWith(prefix) && entry.name.endsWith(".sock")) {
        found.set(entry.name.slice(prefix.length, -5), join(runDir(home), entry.name));
      }
    }
  } catch {
    // No run directory: nothing runs here.
  }
  return found;
}
