import assert from "node:assert/strict";
import { cell, serveTestCell, tempHome } from "./_testing.ts";

Deno.test("cell ping prints one round-trip time per ping and a summary", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "ping-human");
  const { code, stdout, stderr } = await cell(
    ["--home", home.path, "ping", "ping-human", "--count", "3", "--interval", "1"],
  );
  assert.equal(code, 0, stderr);
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.length, 4);
  for (const line of lines.slice(0, 3)) {
    assert.match(line, /^pong from ping-human \(.*ping-human\.(sock|ring)\): time=\d+\.\d{3} ms$/);
  }
  assert.match(lines[3]!, /^3 pings: min \d+\.\d{3} ms, avg \d+\.\d{3} ms, max \d+\.\d{3} ms$/);
});

Deno.test("cell ping --json prints the round-trip times as one JSON object", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "ping-json");
  const { code, stdout } = await cell(
    ["--home", home.path, "ping", "ping-json", "-c", "2", "-i", "1", "--json"],
  );
  assert.equal(code, 0);
  const result = JSON.parse(stdout);
  assert.equal(result.cell, "ping-json");
  assert.equal(result.count, 2);
  assert.equal(result.rtt_ms.length, 2);
  assert.ok(result.min_ms <= result.avg_ms && result.avg_ms <= result.max_ms);
});

Deno.test("cell ping reports a cell that is not running with exit code 1", async () => {
  await using home = await tempHome();
  const { code, stderr } = await cell(["--home", home.path, "ping", "ping-missing"]);
  assert.equal(code, 1);
  assert.match(stderr, /UNAVAILABLE/);
  const bad = await cell(["--home", home.path, "ping", "ping-missing", "--count", "0"]);
  assert.equal(bad.code, 2);
});
