import assert from "node:assert/strict";
import { NucleusClient } from "@cell/sdk";
import { DEFAULT_DIMENSIONS, startVivaldi } from "@cell/vivaldi";
import { cell } from "./_testing.ts";
import { testNucleus } from "./_nucleus_testing.ts";

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
    // More nodes than the matrix has: a bad argument, said so to scripts too.
    await Deno.writeTextFile(`${dir}/grid.tsv`, gridTsv(2));
    const many = await cell(["vivaldi", "eval", "-m", `${dir}/grid.tsv`, "-n", "9", "--json"]);
    assert.equal(many.code, 1);
    assert.deepEqual(JSON.parse(many.stdout), {
      error: { code: "INVALID_ARGUMENT", message: "Nodes must be an integer in [2, 4], got 9" },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cell vivaldi status and route --json answer from this host's Vivaldi cell", async () => {
  await using n = await testNucleus();
  await using _vivaldi = await startVivaldi({ home: n.home, handleSignals: false });
  await using nucleus = await NucleusClient.connect({ home: n.home });
  const at = (x: number) => ({
    vec: new Array(DEFAULT_DIMENSIONS).fill(0).with(0, x),
    error: 0.2,
    adjustment: 0,
    height: 1e-5,
  });
  for (const [id, x] of [["far", 0.05], ["near", 0.002]] as const) {
    await nucleus.register("svc", "", {
      instanceId: id,
      endpoints: [{ transport: "uds", address: `/tmp/svc@${id}.sock` }],
      coordinate: () => at(x),
    });
  }
  const status = await cell(["--home", n.home, "vivaldi", "status", "--json"]);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  const parsed = JSON.parse(status.stdout);
  assert.equal(parsed.node_id, "1");
  assert.equal(parsed.coordinate.vec.length, DEFAULT_DIMENSIONS);
  const route = await cell(["--home", n.home, "vivaldi", "route", "svc", "--json"]);
  assert.equal(route.code, 0, route.stdout + route.stderr);
  const routes = JSON.parse(route.stdout).routes;
  assert.deepEqual(
    routes.map((r: { instance: { instance_id: string } }) => r.instance.instance_id),
    ["near", "far"],
  );
  assert.ok(routes[0].rtt_ms > 1.9 && routes[0].rtt_ms < 2.5, route.stdout);
  const one = await cell(["--home", n.home, "vivaldi", "route", "svc", "--max", "1"]);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /^INSTANCE\s+NODE\s+RTT\s+ENDPOINT\nnear\s+1\s+2\.\d+ ms\s+uds:/);
  const none = await cell(["--home", n.home, "vivaldi", "route", "nobody"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no healthy instances of 'nobody'/);
});

Deno.test("cell vivaldi route says how to start the Vivaldi cell when none runs", async () => {
  await using n = await testNucleus();
  const { code, stderr } = await cell(["--home", n.home, "vivaldi", "route", "svc", "-t", "500"]);
  assert.equal(code, 1);
  assert.match(stderr, /No Vivaldi cell answers on this host: start one with/);
  const bad = await cell(["--home", n.home, "vivaldi", "route", "not a name"]);
  assert.equal(bad.code, 2);
});
