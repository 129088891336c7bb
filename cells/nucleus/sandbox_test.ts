import assert from "node:assert/strict";
import { join } from "node:path";
import { CellError } from "@cell/sdk";
import { launchPlan, loadManifest, permissionFlags, resolveModule } from "./sandbox.ts";
import { fixture, PROBE, SANDBOX, waitFor } from "./testdata/helpers.ts";

const noBwrap = !SANDBOX;

/** A TCP listener on the host that counts the connections it accepts. */
function listener(): Deno.TcpListener & { accepted: () => number } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let count = 0;
  (async () => {
    for await (const conn of l) {
      count++;
      conn.close();
    }
  })().catch(() => {});
  return Object.assign(l, { accepted: () => count });
}

async function probeReport(cell: string, sandbox: boolean, args: string[]) {
  await using f = await fixture();
  const deployment = await f.supervisor.deploy({
    cell,
    module: PROBE,
    instances: 1,
    sandbox,
    args,
  });
  let text = "";
  await waitFor("the probe's report", async () => {
    text = (await f.supervisor.logs({ cell })).map((l) => l.line).join("\n");
    return text.includes("ready");
  });
  return { deployment, text };
}

Deno.test({
  name: "a sandboxed cell is refused /etc/shadow and TCP connections",
  ignore: noBwrap,
  async fn() {
    using tcp = listener();
    const { deployment, text } = await probeReport("probe", true, [String(tcp.addr.port)]);
    assert.equal(deployment.sandbox, "bwrap");
    assert.match(text, /read \/etc\/shadow: refused \(NotCapable\)/);
    assert.match(text, /tcp 127\.0\.0\.1:\d+: refused \(NotCapable\)/);
    assert.equal(tcp.accepted(), 0);
  },
});

Deno.test("the same cell without the sandbox and without Deno permissions is refused by Deno", async () => {
  using tcp = listener();
  const { deployment, text } = await probeReport("probe", false, [String(tcp.addr.port)]);
  assert.equal(deployment.sandbox, "none");
  assert(deployment.permissions.every((p) => p !== "--allow-net" && p !== "-A"));
  assert.match(text, /read \/etc\/shadow: refused \(NotCapable\)/);
  assert.match(text, /tcp 127\.0\.0\.1:\d+: refused \(NotCapable\)/);
  assert.equal(tcp.accepted(), 0);
});

Deno.test({
  name: "bubblewrap alone hides /etc/shadow and the network from a cell with every Deno permission",
  ignore: noBwrap,
  async fn() {
    await using f = await fixture();
    using tcp = listener();
    const plan = await launchPlan({
      home: f.home,
      nodeId: "n7",
      cell: "probe",
      instanceId: "probe-0",
      module: PROBE,
      args: [String(tcp.addr.port)],
      sandbox: true,
      manifest: {},
      maxInstances: 1,
    });
    assert.equal(plan.sandbox, "bwrap");
    const args = plan.args.filter((a) => !plan.permissions.includes(a));
    args.splice(args.indexOf("run") + 1, 0, "-A");
    await Deno.mkdir(plan.cwd, { recursive: true });
    await Deno.mkdir(join(f.home, "run"), { recursive: true });
    const child = new Deno.Command(plan.command, {
      args,
      env: plan.env,
      clearEnv: true,
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    // Not bound into the sandbox: it does not exist there.
    assert.match(text, /read \/etc\/shadow: refused \(NotFound\)/);
    // A network namespace of its own: the host's listener is out of reach.
    assert.match(text, /tcp 127\.0\.0\.1:\d+: refused \((ConnectionRefused|NetworkUnreachable)\)/);
    assert.equal(tcp.accepted(), 0);
  },
});

Deno.test("a manifest comes from cell.json, or the 'cell' key of the nearest deno.json", async () => {
  assert.equal((await loadManifest(PROBE)).name, "probe");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "src"));
    await Deno.writeTextFile(join(dir, "src", "main.ts"), "");
    assert.deepEqual(await loadManifest(join(dir, "src", "main.ts")), {});
    await Deno.writeTextFile(
      join(dir, "deno.json"),
      JSON.stringify({ cell: { name: "x", permissions: { net: ["example.com:443"] } } }),
    );
    const manifest = await loadManifest(join(dir, "src", "main.ts"));
    assert.deepEqual(manifest.permissions?.net, ["example.com:443"]);
    await Deno.writeTextFile(join(dir, "src", "cell.json"), JSON.stringify({ permisions: {} }));
    await assert.rejects(
      loadManifest(join(dir, "src", "main.ts")),
      (e) =>
        e instanceof CellError && e.code === "INVALID_ARGUMENT" &&
        /unknown key 'permisions'/.test(e.message),
    );
    await Deno.writeTextFile(join(dir, "src", "cell.json"), "{ not json");
    await assert.rejects(loadManifest(join(dir, "src", "main.ts")), /is not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("permission flags grant the SDK's needs and what the manifest declares, nothing more", () => {
  const options = {
    home: "/h",
    nodeId: "n",
    cell: "a",
    instanceId: "a-0",
    module: PROBE,
    args: [],
    sandbox: true,
    maxInstances: 2,
  };
  const plain = permissionFlags({ ...options, manifest: {} }, {
    denoDir: "/deno",
    ringCache: "/c",
  });
  const net = plain.find((f) => f.startsWith("--allow-net="))!;
  for (const socket of ["nucleus.sock", "a@a-0.sock", "a.sock"]) {
    assert(net.includes(`unix:/h/run/${socket}`), socket);
  }
  assert(!net.includes("b@") && !net.includes("a@a-1"));
  assert(plain.includes("--allow-write=/h/run,/h/data/a/a-0,/dev/shm"));
  assert(plain.includes("--allow-ffi=/c"));
  assert(plain.some((f) => f.startsWith("--allow-read=") && f.includes("/deno")));
  assert(!plain.some((f) => f === "--allow-net" || f.startsWith("--allow-run") || f === "-A"));
  const declared = permissionFlags({
    ...options,
    manifest: {
      calls: ["b"],
      permissions: {
        net: ["example.com"],
        read: ["$CELL_HOME/shared"],
        ffi: false,
        sys: ["hostname"],
      },
    },
  }, {});
  const net2 = declared.find((f) => f.startsWith("--allow-net="))!;
  assert(net2.startsWith("--allow-net=example.com,") && net2.includes("unix:/h/run/b@b-1.sock"));
  assert(declared.some((f) => f.startsWith("--allow-read=") && f.includes("/h/shared")));
  assert(!declared.some((f) => f.startsWith("--allow-ffi")));
  assert(declared.includes("--allow-sys=hostname"));
});

Deno.test("resolveModule refuses a missing module with NOT_FOUND and a directory with INVALID_ARGUMENT", async () => {
  await assert.rejects(
    resolveModule("/nonexistent/main.ts"),
    (e) => e instanceof CellError && e.code === "NOT_FOUND",
  );
  await assert.rejects(
    resolveModule("/tmp"),
    (e) => e instanceof CellError && e.code === "INVALID_ARGUMENT",
  );
  assert.equal(await resolveModule(`file://${PROBE}`), PROBE);
  assert.equal(await resolveModule("https://example.com/main.ts"), "https://example.com/main.ts");
});

Deno.test("a bubblewrap that cannot create namespaces fails the deploy with FAILED_PRECONDITION", async () => {
  await using f = await fixture();
  const bin = join(f.home, "bin");
  await Deno.mkdir(bin);
  await Deno.writeTextFile(
    join(bin, "bwrap"),
    "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    { mode: 0o755 },
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./testdata/deploy_once.ts", import.meta.url).pathname, f.home],
    env: { PATH: `${bin}:${Deno.env.get("PATH")}` },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /^FAILED_PRECONDITION: bubblewrap is installed but cannot sandbox here/);
  assert.match(text, /No permissions to create new namespace.*or deploy with --no-sandbox/);
  const state = JSON.parse(await Deno.readTextFile(join(f.home, "nucleus", "state.json")));
  assert.deepEqual(state.deployments, []);
});
