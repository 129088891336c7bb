import assert from "node:assert/strict";
import { cell } from "./_testing.ts";
import { testNucleus } from "./_nucleus_testing.ts";
import { formatDeployment, moduleLocation } from "./lifecycle.ts";

const MY_SERVICE = new URL("../examples/my_service/main.ts", import.meta.url).pathname;

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`${what}: not in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("moduleLocation() makes paths absolute and leaves URLs alone", () => {
  assert.equal(moduleLocation("main.ts", "/srv/app"), "/srv/app/main.ts");
  assert.equal(moduleLocation("/abs/main.ts", "/srv"), "/abs/main.ts");
  assert.equal(moduleLocation("https://x.test/m.ts", "/srv"), "https://x.test/m.ts");
  assert.equal(moduleLocation("file:///m.ts", "/srv"), "file:///m.ts");
});

Deno.test("formatDeployment() says which sandbox the instances run in", () => {
  const text = formatDeployment({
    cell: "my-service",
    module: "/m.ts",
    instances: 1,
    sandbox: "none",
    permissions: ["--allow-net"],
    status: [{ instance_id: "i-0", pid: 7, state: "running", restarts: 2, last_exit_code: 1 }],
  }, "deployed");
  assert.match(text, /^my-service: deployed, 1 instance of \/m\.ts\n/);
  assert.match(text, /sandbox: none \(no isolation\)/);
  assert.match(text, /i-0 {2}pid 7 {2}running, 2 restarts, last exit 1/);
});

Deno.test("cell deploy, discover, logs, scale and stop run a cell's processes", async () => {
  await using n = await testNucleus();
  const home = ["--home", n.home];
  try {
    const deployed = await cell([
      ...home,
      "deploy",
      "my-service",
      MY_SERVICE,
      "--instances",
      "2",
      "--no-sandbox",
    ]);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stdout, /sandbox: none/);
    const healthy = async (count: number) => {
      const { stdout } = await cell([...home, "discover", "my-service", "--json"]);
      return JSON.parse(stdout).instances?.length === count;
    };
    await until("2 healthy instances", () => healthy(2));
    const health = JSON.parse((await cell([...home, "health", "--json"])).stdout);
    assert.deepEqual(health.cells[0], {
      cell: "my-service",
      healthy: 2,
      unhealthy: 0,
      desired: 2,
      status: "healthy",
    });
    await until("its ready lines in the logs", async () => {
      const { stdout } = await cell([...home, "logs", "my-service", "--json"]);
      return JSON.parse(stdout).lines.length >= 2;
    });
    const tail = JSON.parse(
      (await cell([...home, "logs", "my-service", "--tail", "1", "--json"]))
        .stdout,
    );
    assert.equal(tail.lines.length, 1);
    assert.match(tail.lines[0].line, /my-service serving on/);
    const scaled = await cell([...home, "scale", "my-service", "1", "--json"]);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.equal(JSON.parse(scaled.stdout).instances, 1);
    await until("1 healthy instance", () => healthy(1));
    const stopped = await cell([...home, "stop", "my-service"]);
    assert.equal(stopped.code, 0, stopped.stderr);
    await until("no instances", async () => {
      const { stdout } = await cell([...home, "discover", "my-service", "--all", "--json"]);
      return JSON.parse(stdout).instances.length === 0;
    });
  } finally {
    await cell([...home, "stop", "my-service"]);
  }
});

Deno.test("cell deploy reports what the nucleus refuses, with exit code 1", async () => {
  await using n = await testNucleus();
  const missing = await cell(["--home", n.home, "deploy", "ghost", "/nonexistent/main.ts"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: [A-Z_]+: /);
  const unknown = await cell(["--home", n.home, "scale", "ghost", "2", "--json"]);
  assert.equal(unknown.code, 1);
  assert.ok(JSON.parse(unknown.stdout).error.code);
});

const hasBwrap = await new Deno.Command("bwrap", { args: ["--version"], stdout: "null" }).output()
  .then((o) => o.success, () => false);

Deno.test({
  name: "cell deploy in the bubblewrap sandbox says so, and discover shows host pids",
  ignore: !hasBwrap,
  async fn() {
    await using n = await testNucleus();
    const home = ["--home", n.home];
    try {
      const deployed = await cell([...home, "deploy", "my-service", MY_SERVICE, "--json"]);
      assert.equal(deployed.code, 0, deployed.stdout);
      const deployment = JSON.parse(deployed.stdout);
      if (deployment.sandbox === "none") return; // bwrap present but unusable here
      assert.equal(deployment.sandbox, "bwrap");
      let found: { instance_id: string; pid: number }[] = [];
      await until("a healthy sandboxed instance", async () => {
        const { stdout } = await cell([...home, "discover", "my-service", "--json"]);
        found = JSON.parse(stdout).instances ?? [];
        return found.length === 1;
      });
      // Inside its pid namespace the instance is pid 1; the nucleus lists its pid on the host.
      const { deployments } = await n.client.deployments({});
      assert.equal(found[0]?.pid, deployments[0]?.status[0]?.pid);
      assert.notEqual(found[0]?.pid, 1);
    } finally {
      await cell([...home, "stop", "my-service"]);
    }
  },
});

Deno.test("an instance killed with SIGKILL is deregistered at once, then replaced", async () => {
  await using n = await testNucleus();
  const home = ["--home", n.home];
  try {
    const deployed = await cell([...home, "deploy", "my-service", MY_SERVICE, "--no-sandbox"]);
    assert.equal(deployed.code, 0, deployed.stderr);
    await until(
      "a healthy instance",
      async () => (await n.client.discover({ cell: "my-service" })).instances.length === 1,
    );
    const [victim] = (await n.client.discover({ cell: "my-service" })).instances;
    const killedAt = Date.now();
    Deno.kill(victim!.pid, "SIGKILL");
    // Well before expiry (3 missed heartbeats of 1 s): the supervisor saw the exit.
    await until("the dead instance gone", async () => {
      const { instances } = await n.client.discover({ cell: "my-service", all: true });
      return instances.every((i) => i.pid !== victim!.pid);
    }, 2000);
    await until("a replacement", async () => {
      const { instances } = await n.client.discover({ cell: "my-service" });
      return instances.length === 1 && instances[0]!.registered_at_ms >= killedAt;
    });
  } finally {
    await cell([...home, "stop", "my-service"]);
  }
});
