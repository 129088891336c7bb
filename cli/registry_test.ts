import assert from "node:assert/strict";
import { cell, tempHome } from "./_testing.ts";
import { healthyInstance, testNucleus } from "./_nucleus_testing.ts";

Deno.test("cell health prints the status per cell and host and exits 0 when healthy", async () => {
  await using n = await testNucleus();
  await healthyInstance(n.client, "my-service");
  const { code, stdout, stderr } = await cell(["--home", n.home, "health"]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^status: healthy\n/);
  assert.match(stdout, /my-service\s+healthy\s+1\s+0\s+-/);
  assert.match(stdout, /\n1\s+healthy\s+1\s+1\s+1\n/);
});

Deno.test("cell health exits 1 when a cell is degraded, and --json prints the report", async () => {
  await using n = await testNucleus();
  await healthyInstance(n.client, "my-service");
  await healthyInstance(n.client, "my-service", false);
  const { code, stdout } = await cell(["--home", n.home, "health", "--json"]);
  assert.equal(code, 1);
  const report = JSON.parse(stdout);
  assert.equal(report.status, "degraded");
  assert.deepEqual(report.cells[0], {
    cell: "my-service",
    healthy: 1,
    unhealthy: 1,
    desired: 0,
    status: "degraded",
  });
});

Deno.test("cell discover --json lists instances with their id, pid and health", async () => {
  await using n = await testNucleus();
  const id = await healthyInstance(n.client, "my-service");
  const { code, stdout, stderr } = await cell(
    ["--home", n.home, "discover", "my-service", "--json"],
  );
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout);
  assert.equal(typeof result.version, "number");
  assert.equal(result.instances.length, 1);
  const [instance] = result.instances;
  assert.equal(instance.instance_id, id);
  assert.equal(instance.pid, 4242);
  assert.equal(instance.health, "healthy");
  const human = await cell(["--home", n.home, "discover", "my-service"]);
  assert.match(human.stdout, new RegExp(`my-service\\s+${id}\\s+1\\s+4242\\s+healthy`));
});

Deno.test("cell discover says how to get instances when there are none", async () => {
  await using n = await testNucleus();
  await healthyInstance(n.client, "sick", false);
  const none = await cell(["--home", n.home, "discover", "sick"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no healthy instances of 'sick' \(try --all\)/);
  const all = await cell(["--home", n.home, "discover", "sick", "--all"]);
  assert.equal(all.code, 0);
  assert.match(all.stdout, /unhealthy/);
});

Deno.test("cell topology lists this host and its instances", async () => {
  await using n = await testNucleus();
  await healthyInstance(n.client, "my-service");
  const { code, stdout } = await cell(["--home", n.home, "topology"]);
  assert.equal(code, 0);
  assert.match(stdout, /^node 1 \(this host\): 1 instance\n/);
  assert.match(stdout, /my-service/);
  const json = JSON.parse((await cell(["--home", n.home, "topology", "--json"])).stdout);
  assert.equal(json.node_id, "1");
  assert.equal(json.hosts[0].instances[0].pid, 4242);
});

Deno.test("the nucleus commands say to start a nucleus when none runs", async () => {
  await using home = await tempHome();
  for (const args of [["health"], ["topology"], ["discover", "x"], ["stop", "x"], ["logs", "x"]]) {
    const { code, stderr } = await cell(["--home", home.path, ...args]);
    assert.equal(code, 1, args.join(" "));
    assert.match(stderr, new RegExp(`No nucleus on ${home.path}: start one with \`cell nucleus\``));
  }
  const json = await cell(["--home", home.path, "health", "--json"]);
  assert.equal(JSON.parse(json.stdout).error.code, "UNAVAILABLE");
});

Deno.test("the nucleus commands refuse an invalid cell name with exit code 2", async () => {
  await using n = await testNucleus();
  for (const args of [["discover", "Bad Name"], ["deploy", "Bad", "x.ts"], ["scale", "A", "1"]]) {
    const { code, stderr } = await cell(["--home", n.home, ...args]);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, /is invalid/);
  }
  assert.equal((await cell(["--home", n.home, "scale", "x", "many"])).code, 2);
  assert.equal((await cell(["--home", n.home, "logs", "x", "--tail", "0"])).code, 2);
  // The nucleus is unharmed.
  assert.equal((await cell(["--home", n.home, "health"])).code, 0);
});
