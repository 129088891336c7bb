import assert from "node:assert/strict";
import { checkHistories } from "./check.ts";

Deno.test("one hundred randomized fault histories show no linearizability anomaly", async () => {
  // A fresh seed every run, printed so that a failure replays: CELL_CHECK_SEED pins it.
  const pinned = Deno.env.get("CELL_CHECK_SEED");
  const seed = pinned === undefined ? crypto.getRandomValues(new Uint32Array(1))[0]! : +pinned;
  console.log(`consensus histories seed ${seed}`);
  const lines: string[] = [];
  const summary = await checkHistories(100, seed, { log: (line) => lines.push(line) });
  assert.equal(summary.histories, 100);
  assert.deepEqual(
    summary.failed_seeds,
    [],
    `anomalies (replay with --seed X --histories 1):\n${lines.join("\n")}`,
  );
  assert.equal(summary.anomalies, 0);
});

Deno.test("check.ts prints one JSON summary line and replays a seed", async () => {
  const run = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./check.ts", import.meta.url).pathname, "--histories", "2"]
        .concat(["--seed", "12345"]),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return {
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  };
  const first = await run();
  assert.deepEqual(JSON.parse(first.stdout), { histories: 2, anomalies: 0, failed_seeds: [] });
  assert.match(first.stderr, /seed 12345/);
  assert.equal((await run()).stdout, first.stdout);
});

Deno.test("check.ts refuses a history count that is not a positive integer", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./check.ts", import.meta.url).pathname, "--histories", "0"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(out.code, 0);
  assert.match(new TextDecoder().decode(out.stderr), /--histories must be a positive integer/);
});
