import assert from "node:assert/strict";
import { startNucleus } from "@cell/nucleus";
import { cell, tempHome } from "./_testing.ts";

Deno.test("cell nucleus refuses to start when a nucleus already runs on the home", async () => {
  await using home = await tempHome();
  const first = await startNucleus({ home: home.path, nodeId: "1", log: () => {} });
  try {
    const { code, stderr } = await cell(["--home", home.path, "nucleus"]);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`already running on ${home.path} \\(pid ${Deno.pid}\\)`));
  } finally {
    await first.stop();
  }
});

Deno.test("cell nucleus serves until SIGTERM, then exits 0", async () => {
  await using home = await tempHome();
  const main = new URL("./main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "nucleus", "--heartbeat-ms", "200", "--json"],
    env: { CELL_HOME: home.path, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    line += value;
  }
  const ready = JSON.parse(line);
  assert.deepEqual(ready.serving, [`uds:${home.path}/run/nucleus.sock`]);
  assert.equal(ready.pid, child.pid);
  const health = await cell(["--home", home.path, "health", "--json"]);
  assert.equal(JSON.parse(health.stdout).status, "healthy");
  child.kill("SIGTERM");
  await reader.cancel();
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  assert.equal(status.code, 0, stderr);
  assert.match(stderr, /heartbeat every 200 ms/);
});

Deno.test("cell nucleus --help teaches with examples", async () => {
  const { code, stdout } = await cell(["nucleus", "--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /--heartbeat-ms/);
  assert.match(stdout, /Examples:\n {2}\$ cell nucleus/);
  for (const command of ["deploy", "scale", "stop", "logs", "health", "topology", "discover"]) {
    const help = await cell([command, "--help"]);
    assert.equal(help.code, 0, command);
    assert.match(help.stdout, new RegExp(`Examples:\\n {2}\\$ cell ${command}`), command);
    assert.match(help.stdout, /--json/, command);
  }
});
