// Calls spread over the instances of a cell that the nucleus knows, and follow them as they
// come and go.
import { connect } from "@cell/sdk";
import { tempCellHome } from "@cell/sdk/testing";
import { Who } from "./fixtures/serve_instance.ts";
import { assert, assertEquals, waitFor } from "./_helpers.ts";
import { Instances, quietNucleus } from "./_instances.ts";

function count(ids: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const id of ids) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}

Deno.test("round-robin takes turns over 3 instances", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path);
  await using instances = new Instances(home.path);
  for (const id of ["a", "b", "c"]) await instances.start(id);
  await using client = await connect("who", { service: Who, balance: "round-robin" });
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) ids.push((await client.who({})).instance);
  assertEquals(count(ids), { a: 10, b: 10, c: 10 });
  // Turns: each window of 3 consecutive calls visits every instance.
  for (let i = 0; i + 3 <= ids.length; i += 3) assertEquals(new Set(ids.slice(i, i + 3)).size, 3);
  assert(["a", "b", "c"].includes(client.$info.instance!), JSON.stringify(client.$info));
  // The instance's own socket, or the shared-memory ring beside it.
  const { address, instance, transport } = client.$info;
  assertEquals(
    address.slice(address.lastIndexOf("/")),
    `/who@${instance}.${transport === "shm" ? "ring" : "sock"}`,
  );
});

Deno.test("least-outstanding sends each call to the instance with the fewest calls in flight", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path);
  await using instances = new Instances(home.path);
  for (const id of ["a", "b", "c"]) await instances.start(id);
  await using client = await connect("who", { service: Who });
  // Three slow calls at once: one per instance.
  const slow = await Promise.all([1, 2, 3].map(() => client.who({ delay_ms: 200 })));
  assertEquals(count(slow.map((a) => a.instance)), { a: 1, b: 1, c: 1 });
  // While one instance is busy, quick calls go to the two others, in turns.
  const busy = client.who({ delay_ms: 600 });
  await new Promise((r) => setTimeout(r, 50));
  const busyId = client.$info.instance;
  const quick: string[] = [];
  for (let i = 0; i < 20; i++) quick.push((await client.who({})).instance);
  const busyAnswer = await busy;
  const counts = count(quick);
  assertEquals(counts[busyAnswer.instance], undefined, JSON.stringify({ counts, busyId }));
  assertEquals(Object.values(counts), [10, 10]);
});

Deno.test("the watch adds a new instance to a connected client without polling", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path);
  await using instances = new Instances(home.path);
  for (const id of ["a", "b"]) await instances.start(id);
  await using client = await connect("who", { service: Who, balance: "round-robin" });
  const before = new Set<string>();
  for (let i = 0; i < 6; i++) before.add((await client.who({})).instance);
  assertEquals([...before].sort(), ["a", "b"]);
  await instances.start("c"); // resolves once c has registered
  const registered = Date.now();
  await waitFor(async () => (await client.who({})).instance === "c", 2000);
  // The long-poll answers at once; a poll every second or two would be slower.
  assert(Date.now() - registered < 500, `took ${Date.now() - registered} ms`);
});

Deno.test("an instance that leaves drains: its call in flight finishes, no call fails", async () => {
  await using home = await tempCellHome();
  await using _nucleus = await quietNucleus(home.path);
  await using instances = new Instances(home.path);
  for (const id of ["a", "b", "c"]) await instances.start(id);
  await using client = await connect("who", { service: Who, balance: "round-robin" });
  // One slow call on each instance, then c is told to stop (SIGTERM: deregister, drain, exit).
  const slow = [1, 2, 3].map(() => client.who({ delay_ms: 400 }));
  await new Promise((r) => setTimeout(r, 50));
  const c = instances.children.get("c")!;
  c.process.kill("SIGTERM");
  let exited = false;
  const status = c.process.status.finally(() => exited = true);
  const during: string[] = [];
  while (!exited) during.push((await client.who({})).instance); // none of them fails
  assertEquals((await status).code, 0);
  assertEquals(count((await Promise.all(slow)).map((a) => a.instance)), { a: 1, b: 1, c: 1 });
  const after: string[] = [];
  for (let i = 0; i < 10; i++) after.push((await client.who({})).instance);
  assertEquals(count(after), { a: 5, b: 5 });
  assert(during.length > 0);
});
