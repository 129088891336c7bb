// Calls keep succeeding while an instance of the cell dies.
import { connect } from "@cell/sdk";
import { tempCellHome } from "@cell/sdk/testing";
import { Who } from "./fixtures/serve_instance.ts";
import { assert, assertEquals } from "./_helpers.ts";
import { Instances, quietNucleus } from "./_instances.ts";

Deno.test("a steady stream of idempotent calls loses none when one of 3 instances is killed", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path);
  await using instances = new Instances(home.path);
  for (const id of ["a", "b", "c"]) await instances.start(id);
  await using client = await connect("who", { service: Who, timeoutMs: 5000 });

  const served: Record<string, number> = {};
  const failures: unknown[] = [];
  let killedAt = Infinity;
  const servedAfterKill: Record<string, number> = {};
  let stop = false;
  const worker = async () => {
    while (!stop) {
      try {
        const { instance } = await client.who({ delay_ms: 2 });
        served[instance] = (served[instance] ?? 0) + 1;
        if (Date.now() > killedAt + 100) {
          servedAfterKill[instance] = (servedAfterKill[instance] ?? 0) + 1;
        }
      } catch (e) {
        failures.push(e);
      }
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  await new Promise((r) => setTimeout(r, 700));
  const victim = instances.children.get("b")!;
  victim.process.kill("SIGKILL");
  killedAt = Date.now();
  await victim.process.status;
  // Long enough for the dead instance to be retried after its down time, and expired by the
  // nucleus (3 missed heartbeats).
  await new Promise((r) => setTimeout(r, 4000));
  stop = true;
  await Promise.all(workers);

  assertEquals(failures.map(String), []);
  assert((served.b ?? 0) > 0, "b should have served calls before it was killed");
  assertEquals(servedAfterKill.b, undefined);
  assert((servedAfterKill.a ?? 0) > 0 && (servedAfterKill.c ?? 0) > 0, JSON.stringify(served));
});

Deno.test("calls keep flowing while the nucleus restarts, and the watch resumes after it", async () => {
  await using home = await tempCellHome();
  let nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: 300 });
  try {
    await using instances = new Instances(home.path);
    for (const id of ["a", "b"]) await instances.start(id);
    await using client = await connect("who", { service: Who, balance: "round-robin" });
    const failures: unknown[] = [];
    const served = new Set<string>();
    let stop = false;
    const worker = async () => {
      while (!stop) {
        await client.who({ delay_ms: 2 }).then(
          (a) => served.add(a.instance),
          (e) => failures.push(e),
        );
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    await new Promise((r) => setTimeout(r, 300));
    await nucleus.stop();
    await new Promise((r) => setTimeout(r, 700));
    nucleus = await quietNucleus(home.path, { heartbeatIntervalMs: 300 });
    await new Promise((r) => setTimeout(r, 1000)); // a and b register again meanwhile
    served.clear();
    await instances.start("c");
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(workers);
    assertEquals(failures.map(String), []);
    assertEquals([...served].sort(), ["a", "b", "c"]);
  } finally {
    await nucleus.stop();
  }
});
