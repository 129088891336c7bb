import assert from "node:assert/strict";
import { cell } from "./_testing.ts";

/** Hosts on a 4×4 grid, 10 ms apart, as a TSV matrix. */
function gridTsv(side: number): string {
  const points = Array.from({ length: side * side }, (_, i) => [i % side, Math.floor(i / side)]);
  return points.map(([ax, ay]) =>
    points.map(([bx, by]) => (10 * Math.hypot(ax! - bx!, ay! - by!)).toFixed(3)).join("\t")
  ).join("\n");
}

Deno.test("cell vivaldi eval --json scores a matrix file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cell-vivaldi-" });
  try {
    const path = `${dir}/grid.tsv`;
    await Deno.writeTextFile(path, gridTsv(4));
    const { code, stdout, stderr } = await cell(["vivaldi", "eval", "--matrix", path, "--json"]);
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout);
    assert.deepEqual(Object.keys(result), [
      "median_rel_error",
      "p90_rel_error",
      "hit_at_3",
      "hit_at_10",
      "stretch_at_10",
      "rounds",
    ]);
    // Euclidean distances are what Vivaldi models exactly.
    assert.ok(result.median_rel_error < 0.1, stdout);
    const subset = await cell(["vivaldi", "eval", "-m", path, "-n", "8", "-s", "2"]);
    assert.equal(subset.code, 0, subset.stderr);
    assert.match(subset.stdout, /^median_rel_error\s+\d/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cell vivaldi eval says what is wrong with a missing file, a bad unit or a bad matrix", async () => {
  const missing = await cell(["vivaldi", "eval", "--matrix", "/nonexistent/m.tsv"]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /Cannot read the matrix '\/nonexistent\/m\.tsv'/);
  const unit = await cell(["vivaldi", "eval", "--matrix", "x.tsv", "--unit", "hours"]);
  assert.equal(unit.code, 2);
  assert.match(unit.stderr, /--unit must be s, ms or auto, not 'hours'/);
  const dir = await Deno.makeTempDir({ prefix: "cell-vivaldi-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.tsv`, "0\t1\n1\tabc\n");
    const bad = await cell(["vivaldi", "eval", "--matrix", `${dir}/bad.tsv`]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /"abc" is not a number/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
