import assert from "node:assert/strict";
import { historySeed } from "./random.ts";
import { runHistory } from "./run.ts";

Deno.test("twenty fault histories from a fixed seed show no anomaly", async () => {
  let completed = 0;
  for (let i = 0; i < 20; i++) {
    const r = await runHistory(historySeed(2024, i));
    assert.deepEqual(r.anomalies, [], `seed ${r.seed}`);
    completed += r.completed;
  }
  assert.ok(completed > 20 * 100, `only ${completed} operations completed`);
});

Deno.test("the same seed replays the byte-identical history", async () => {
  const a = await runHistory(77);
  const b = await runHistory(77);
  assert.equal(JSON.stringify(a.history), JSON.stringify(b.history));
  assert.deepEqual(a.trace, b.trace);
  assert.equal(a.steps, b.steps);
  const c = await runHistory(78);
  assert.notEqual(JSON.stringify(a.history), JSON.stringify(c.history));
});

Deno.test("the harness catches members that serve linearizable reads from local state", async () => {
  const seeds = [1, 2, 3, 4, 5];
  const caught = [];
  for (const seed of seeds) {
    const r = await runHistory(seed, { faults: { staleReads: true } });
    if (r.anomalies.some((a) => a.startsWith("Not linearizable"))) caught.push(seed);
  }
  assert.ok(caught.length >= 2, `caught only in ${JSON.stringify(caught)}`);
});

Deno.test("the harness catches members that acknowledge before their writes are durable", async () => {
  // Frequent crashes, slow syncs and no surviving unsynced tail widen the window.
  const profile = { disk: { minSyncMs: 5, maxSyncMs: 40, tornTail: 0 }, nemesisMs: 150 };
  let caught: string | undefined;
  for (let seed = 1; seed <= 30 && caught === undefined; seed++) {
    const r = await runHistory(seed, { ...profile, faults: { sendBeforeSync: true } });
    caught = r.anomalies[0];
  }
  assert.ok(caught !== undefined, "no history exposed the defect");
  for (let seed = 1; seed <= 5; seed++) {
    assert.deepEqual((await runHistory(seed, profile)).anomalies, [], "the correct code passes");
  }
});
