/**
 * Test helpers: a cluster of consensus members in this process, each on its own Unix socket, on
 * in-memory storage and with short timeouts, for tests of code that talks to the consensus cell.
 *
 * @module
 */
import { MemoryStorage } from "./memory_storage.ts";
import { type Member, startMember } from "./member.ts";

/** A running in-process cluster; disposing it stops every member (and removes an owned home). */
export interface LocalCluster extends AsyncDisposable {
  /** The Cell home the members serve under (`<home>/run/consensus@<id>.sock`). */
  readonly home: string;
  /** The running members by id (stop one and delete it to simulate a failure). */
  readonly members: Map<string, Member>;
  /** Resolves with the id of the one leader, once exactly one is elected (10 s at most). */
  leader(): Promise<string>;
}

/** Options of {@linkcode startLocalCluster}. */
export interface LocalClusterOptions {
  /** Member ids. @default {["a", "b", "c"]} */
  ids?: string[];
  /** The home to serve under; a temporary one (removed on dispose) when absent. */
  home?: string;
  /** Base election timeout. @default {200} */
  electionTimeoutMs?: number;
  /** Heartbeat interval. @default {30} */
  heartbeatMs?: number;
}

/**
 * Starts a cluster of consensus members in this process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectConsensus } from "@cell/consensus/client";
 * import { startLocalCluster } from "@cell/consensus/testing";
 *
 * await using cluster = await startLocalCluster();
 * await cluster.leader();
 * await using kv = await connectConsensus({ members: ["a", "b", "c"], home: cluster.home });
 * await kv.write({ key: "greeting", value: "hello" });
 * assert.ok((await kv.read({ key: "greeting" })).value === "hello");
 * ```
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const ids = options.ids ?? ["a", "b", "c"];
  const owned = options.home === undefined;
  const home = options.home ?? await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-cons-" });
  const members = new Map<string, Member>();
  const stop = async () => {
    await Promise.all([...members.values()].map((m) => m.stop()));
    if (owned) await Deno.remove(home, { recursive: true });
  };
  try {
    for (const id of ids) {
      const member = await startMember({
        id,
        members: ids,
        storage: new MemoryStorage(),
        home,
        register: false,
        electionTimeoutMs: options.electionTimeoutMs ?? 200,
        heartbeatMs: options.heartbeatMs ?? 30,
      });
      members.set(id, member);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    home,
    members,
    async leader(): Promise<string> {
      for (const end = Date.now() + 10_000; Date.now() < end;) {
        const leaders = [...members.values()].map((m) => m.node.status())
          .filter((s) => s.role === "leader");
        if (leaders.length === 1) return leaders[0]!.id;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error("No leader elected in 10 s: check the members' logs");
    },
    [Symbol.asyncDispose]: stop,
  };
}
