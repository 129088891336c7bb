// Vivaldi on loopback with real processes: instances behind artificial access links of
// different delays measure their coordinates, the Vivaldi cell ranks them, and clients
// balancing with "nearest" send most calls to the nearest one.
import { connect } from "@cell/sdk";
import { tempCellHome } from "@cell/sdk/testing";
import { Vivaldi } from "@cell/vivaldi";
import { Who } from "./fixtures/serve_instance.ts";
import { assert, assertEquals, type Child, spawnReady, waitFor } from "./_helpers.ts";
import { quietNucleus } from "./_instances.ts";

/** Milliseconds each instance's link adds to every frame it sends. */
const DELAYS: Record<string, number> = { a: 1, b: 12, c: 30 };

async function startInstances(home: string): Promise<AsyncDisposable> {
  const children: Child[] = [];
  for (const [id, delay] of Object.entries(DELAYS)) {
    children.push(
      await spawnReady("./fixtures/vivaldi_instance.ts", [], {
        CELL_HOME: home,
        CELL_INSTANCE_ID: id,
        DELAY_MS: String(delay),
      }),
    );
  }
  return {
    async [Symbol.asyncDispose]() {
      for (const child of children) await child[Symbol.asyncDispose]();
    },
  };
}

function startVivaldiCell(home: string): Promise<Child> {
  return spawnReady("../cells/vivaldi/main.ts", ["--interval-ms", "100"], { CELL_HOME: home });
}

function count(ids: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const id of ids) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}

Deno.test("route() orders instances by the delay of their links, nearest first", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: 200 });
  await using _instances = await startInstances(home.path);
  await using _vivaldi = await startVivaldiCell(home.path);
  await using vivaldi = await connect<typeof Vivaldi>("vivaldi", { service: Vivaldi });
  let last = "";
  await waitFor(async () => {
    const { routes } = await vivaldi.route({ target_cell: "near" });
    last = JSON.stringify(routes.map((r) => [r.instance.instance_id, r.rtt_ms]));
    // In order, and converged: c's link is 29 ms longer than a's.
    return routes.map((r) => r.instance.instance_id).join() === "a,b,c" &&
      routes[2]!.rtt_ms! - routes[0]!.rtt_ms! > 15;
  }, 30_000).catch((e) => {
    throw new Error(`route() never ordered a,b,c; last ${last}`, { cause: e });
  });
  const { routes } = await vivaldi.route({ target_cell: "near", max_results: 2 });
  assertEquals(routes.map((r) => r.instance.instance_id), ["a", "b"]);
  // Between two instances: both links, both ways.
  const ac = await vivaldi.estimate_rtt({ a: "a", b: "c" });
  assert(ac.rtt_ms > 15 && ac.rtt_ms < 60, JSON.stringify(ac));
  const status = await vivaldi.status({});
  assert(status.samples > 0 && status.peers >= 3, JSON.stringify(status));
  assertEquals((await vivaldi.coordinate({ node: "b" })).coordinate !== undefined, true);
});

Deno.test("the nearest strategy sends most calls to the nearest instance", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: 200 });
  await using _instances = await startInstances(home.path);
  await using _vivaldi = await startVivaldiCell(home.path);
  await using vivaldi = await connect<typeof Vivaldi>("vivaldi", { service: Vivaldi });
  await waitFor(async () => {
    const { routes } = await vivaldi.route({ target_cell: "near" });
    return routes.map((r) => r.instance.instance_id).join() === "a,b,c";
  }, 30_000);
  await using client = await connect("near", { service: Who, balance: "nearest" });
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) ids.push((await client.who({})).instance);
  const counts = count(ids);
  assert((counts.a ?? 0) >= 54, JSON.stringify(counts));
  // Under load, calls spill over to the next nearest instead of queueing on one. (A first
  // burst opens the connections to the others: until it is open, an instance counts no call.)
  await Promise.all(Array.from({ length: 40 }, () => client.who({})));
  const burst = await Promise.all(Array.from({ length: 40 }, () => client.who({})));
  const spread = count(burst.map((r) => r.instance));
  assert(Object.keys(spread).length >= 2, JSON.stringify(spread));
  assert(
    (spread.a ?? 0) >= (spread.b ?? 0) && (spread.b ?? 0) >= (spread.c ?? 0),
    JSON.stringify(spread),
  );
});

Deno.test("without coordinates, nearest learns from its own calls' latencies", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: 200 });
  await using _instances = await startInstances(home.path);
  // No Vivaldi cell: the client does not know where it stands.
  await using client = await connect("near", { service: Who, balance: "nearest" });
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) ids.push((await client.who({})).instance);
  const counts = count(ids);
  assert((counts.a ?? 0) >= 50, JSON.stringify(counts));
});
