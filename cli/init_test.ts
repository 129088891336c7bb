import assert from "node:assert/strict";
import { join } from "node:path";
import { cell, tempHome } from "./_testing.ts";
import { initHome, type NodeConfig, parseNodeId } from "./init.ts";

const mode = async (path: string) => (await Deno.stat(path)).mode! & 0o777;

function der(pem: string, label: string): Uint8Array<ArrayBuffer> {
  const body = pem.replace(`-----BEGIN ${label}-----`, "").replace(`-----END ${label}-----`, "");
  return Uint8Array.fromBase64(body.replace(/\s+/g, ""));
}

Deno.test("cell init creates the home layout with private modes and an Ed25519 identity", async () => {
  await using home = await tempHome();
  const dir = join(home.path, "new-home");
  const { code, stdout } = await cell(["--home", dir, "init", "--node-id", "1"]);
  assert.equal(code, 0);
  assert.match(stdout, /Initialized .* as node 1/);
  for (const sub of ["", "run", "logs", "state", "identity"]) {
    assert.equal(await mode(join(dir, sub)), 0o700, `mode of ${sub || "home"}`);
  }
  assert.equal(await mode(join(dir, "identity", "node.key")), 0o600);
  assert.equal(await mode(join(dir, "identity", "node.pub")), 0o644);
  const leftovers = [...Deno.readDirSync(join(dir, "identity"))].map((e) => e.name).sort();
  assert.deepEqual(leftovers, ["node.key", "node.pub"], "no temporary files are left behind");

  const config: NodeConfig = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  assert.equal(config.node_id, 1);
  assert.equal(config.version, "0.1.0");
  assert.ok(!Number.isNaN(Date.parse(config.created_at)));
  assert.equal(Uint8Array.fromBase64(config.public_key, { alphabet: "base64url" }).length, 32);
});

Deno.test("cell init writes a key pair that signs and verifies after a PEM round trip", async () => {
  await using home = await tempHome();
  assert.equal((await cell(["--home", home.path, "init", "--node-id", "3"])).code, 0);
  const keyPem = await Deno.readTextFile(join(home.path, "identity", "node.key"));
  const pubPem = await Deno.readTextFile(join(home.path, "identity", "node.pub"));
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(pubPem, /^-----BEGIN PUBLIC KEY-----\n/);

  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    der(keyPem, "PRIVATE KEY"),
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  const publicKey = await crypto.subtle.importKey(
    "spki",
    der(pubPem, "PUBLIC KEY"),
    { name: "Ed25519" },
    true,
    ["verify"],
  );
  const message = new TextEncoder().encode("node 3 says hello");
  const signature = await crypto.subtle.sign("Ed25519", privateKey, message);
  assert.ok(await crypto.subtle.verify("Ed25519", publicKey, signature, message));
  const tampered = new TextEncoder().encode("node 3 says goodbye");
  assert.ok(!(await crypto.subtle.verify("Ed25519", publicKey, signature, tampered)));

  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", publicKey));
  const config: NodeConfig = JSON.parse(await Deno.readTextFile(join(home.path, "config.json")));
  assert.equal(config.public_key, raw.toBase64({ alphabet: "base64url", omitPadding: true }));
});

Deno.test("cell init run twice with the same node id keeps the key and says so", async () => {
  await using home = await tempHome();
  const first = await cell(["--home", home.path, "init", "--node-id", "5", "--json"]);
  const keyBefore = await Deno.readTextFile(join(home.path, "identity", "node.key"));
  const configBefore = await Deno.readTextFile(join(home.path, "config.json"));
  const second = await cell(["--home", home.path, "init", "--node-id", "5", "--json"]);
  assert.equal(first.code, 0);
  assert.equal(second.code, 0);
  const a = JSON.parse(first.stdout);
  const b = JSON.parse(second.stdout);
  assert.deepEqual(a, { home: home.path, node_id: 5, public_key: a.public_key, created: true });
  assert.deepEqual(b, { ...a, created: false });
  assert.equal(await Deno.readTextFile(join(home.path, "identity", "node.key")), keyBefore);
  assert.equal(await Deno.readTextFile(join(home.path, "config.json")), configBefore);

  const human = await cell(["--home", home.path, "init", "--node-id", "5"]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /already initialized as node 5/);
  assert.match(human.stdout, new RegExp(`kept the identity key ${a.public_key}`));
});

Deno.test("cell init refuses another node id without --force, and --force keeps the key", async () => {
  await using home = await tempHome();
  const first = JSON.parse((await cell(["--home", home.path, "init", "-n", "1", "--json"])).stdout);

  const refused = await cell(["--home", home.path, "init", "--node-id", "2"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /already initialized as node 1, not 2: .*--force/);
  const config = JSON.parse(await Deno.readTextFile(join(home.path, "config.json")));
  assert.equal(config.node_id, 1, "the refused run changed nothing");

  const refusedJson = await cell(["--home", home.path, "init", "--node-id", "2", "--json"]);
  assert.equal(refusedJson.code, 1);
  assert.equal(JSON.parse(refusedJson.stdout).error.code, "ALREADY_EXISTS");

  const forced = await cell(["--home", home.path, "init", "--node-id", "2", "--force"]);
  assert.equal(forced.code, 0);
  assert.match(forced.stdout, /Changed node id .* from 1 to 2/);
  const after = JSON.parse(await Deno.readTextFile(join(home.path, "config.json")));
  assert.equal(after.node_id, 2);
  assert.equal(after.public_key, first.public_key);
  assert.equal(after.created_at, config.created_at);
});

Deno.test("cell init --new-key replaces the key pair", async () => {
  await using home = await tempHome();
  const before = await initHome({ nodeId: 4, home: home.path });
  const { code, stdout } = await cell([
    "--home",
    home.path,
    "init",
    "-n",
    "4",
    "--new-key",
    "--json",
  ]);
  assert.equal(code, 0);
  const after = JSON.parse(stdout);
  assert.equal(after.created, true);
  assert.notEqual(after.public_key, before.publicKey);
  const config = JSON.parse(await Deno.readTextFile(join(home.path, "config.json")));
  assert.equal(config.public_key, after.public_key);
});

Deno.test("cell init rejects a node id that is not a non-negative integer with exit code 2", async () => {
  await using home = await tempHome();
  for (const bad of ["abc", "-1", "1.5", "1e3", "", "0x10", "99999999999999999999"]) {
    const { code, stderr } = await cell(["--home", home.path, "init", "--node-id", bad]);
    assert.equal(code, 2, `--node-id ${JSON.stringify(bad)}`);
    assert.match(stderr, /Node id .* is invalid: use a non-negative integer/);
  }
  const missing = await cell(["--home", home.path, "init"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /required option '-n, --node-id <id>'/);
  assert.deepEqual([...Deno.readDirSync(home.path)], [], "nothing was created");
});

Deno.test("parseNodeId() accepts zero and large safe integers", () => {
  assert.equal(parseNodeId("0"), 0);
  assert.equal(parseNodeId("9007199254740991"), Number.MAX_SAFE_INTEGER);
});

Deno.test("cell init refuses a corrupt private key instead of overwriting it", async () => {
  await using home = await tempHome();
  await initHome({ nodeId: 1, home: home.path });
  await Deno.writeTextFile(join(home.path, "identity", "node.key"), "not a key\n");
  const { code, stderr } = await cell(["--home", home.path, "init", "--node-id", "1"]);
  assert.equal(code, 1);
  assert.match(stderr, /node\.key is not an Ed25519 private key .*--new-key/);
  assert.equal(await Deno.readTextFile(join(home.path, "identity", "node.key")), "not a key\n");
});

Deno.test("cell init in a subprocess uses CELL_HOME and exits with the command's code", async () => {
  await using home = await tempHome();
  const main = new URL("./main.ts", import.meta.url).pathname;
  const runMain = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, ...args],
      env: { CELL_HOME: home.path, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  const ok = await runMain("init", "--node-id", "9", "--json");
  assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
  assert.equal(JSON.parse(new TextDecoder().decode(ok.stdout)).home, home.path);
  const bad = await runMain("init", "--node-id", "nine");
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /Node id "nine" is invalid/);
});
