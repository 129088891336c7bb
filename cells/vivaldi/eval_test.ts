import assert from "node:assert/strict";
import { evaluate, main } from "./eval.ts";
import { parseRttMatrix, type RttMatrix, subMatrix } from "./matrix.ts";

function grid(side: number, unitRtt: number): RttMatrix {
  const points = Array.from({ length: side * side }, (_, i) => [i % side, Math.floor(i / side)]);
  const rtt = points.map(([x1, y1], i) =>
    points.map(([x2, y2], j) => i === j ? NaN : unitRtt * (0.5 + Math.hypot(x1! - x2!, y1! - y2!)))
  );
  return { size: points.length, rtt };
}

Deno.test("evaluate() scores a small synthetic matrix as nearly exact", () => {
  const result = evaluate(grid(5, 0.01), { dimensions: 2, trials: 2000 });
  assert.ok(result.median_rel_error < 0.05, JSON.stringify(result));
  assert.ok(result.hit_at_3 > 0.8, JSON.stringify(result));
  assert.ok(result.stretch_at_10 >= 1);
  assert.ok(result.rounds > 0);
});

Deno.test("evaluate() is deterministic for a seed and detects milliseconds", () => {
  const seconds = evaluate(grid(4, 0.02), { seed: 3, trials: 500 });
  const millis = evaluate(grid(4, 20), { seed: 3, trials: 500 });
  assert.deepEqual(seconds, evaluate(grid(4, 0.02), { seed: 3, trials: 500 }));
  assert.ok(Math.abs(seconds.median_rel_error - millis.median_rel_error) < 1e-6);
});

Deno.test("evaluate() on a subset uses only that many hosts", () => {
  const result = evaluate(grid(5, 0.01), { nodes: 9, seed: 2, trials: 500 });
  assert.ok(Number.isFinite(result.median_rel_error));
  assert.throws(
    () => evaluate(grid(3, 0.01), { nodes: 10 }),
    /Nodes must be an integer in \[2, 9\]/,
  );
});

Deno.test("parseRttMatrix() averages asymmetric pairs and skips zero entries", () => {
  const m = parseRttMatrix("0\t0.1\t0\n0.3\t0\t0.2\n0\t0\t0\n");
  assert.equal(m.size, 3);
  assert.ok(Math.abs(m.rtt[0]![1]! - 0.2) < 1e-12);
  assert.equal(m.rtt[1]![2], 0.2);
  assert.equal(m.rtt[2]![1], 0.2);
  assert.ok(Number.isNaN(m.rtt[0]![2]!));
  assert.ok(Number.isNaN(m.rtt[1]![1]!));
  assert.deepEqual(subMatrix(m, [1, 2]).rtt[0], [NaN, 0.2]);
});

Deno.test("parseRttMatrix() names the row of a short row", () => {
  assert.throws(
    () => parseRttMatrix("0\t1\t2\n1\t0\n2\t1\t0\n"),
    new SyntaxError(
      "RTT matrix row 2 has 2 entries, expected 3: the matrix must be square",
    ),
  );
});

Deno.test("parseRttMatrix() quotes a non-numeric entry with its position", () => {
  assert.throws(
    () => parseRttMatrix("0\t1\n1\tabc\n"),
    new SyntaxError('RTT matrix row 2, column 2: "abc" is not a number'),
  );
  assert.throws(() => parseRttMatrix("0\n"), /at least 2 rows/);
});

Deno.test("the eval command prints one JSON line for a matrix file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = grid(4, 10);
    const path = `${dir}/grid.tsv`;
    await Deno.writeTextFile(path, m.rtt.map((r) => r.map((v) => v || 0).join("\t")).join("\n"));
    const out = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./eval.ts", import.meta.url).pathname,
        "--matrix",
        path,
        "--json",
      ],
    }).outputSync();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(Object.keys(result), [
      "median_rel_error",
      "p90_rel_error",
      "hit_at_3",
      "hit_at_10",
      "stretch_at_10",
      "rounds",
    ]);
    assert.equal(await main([]), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
