import assert from "node:assert/strict";
import { startLocalCluster } from "@cell/consensus/testing";
import { cell, tempHome } from "./_testing.ts";

const IDS = ["a", "b", "c"];

Deno.test("cell consensus put then get prints the value, found through the sockets in run/", async () => {
  await using home = await tempHome();
  await using _members = await startLocalCluster({ ids: IDS, home: home.path });
  const put = await cell(["--home", home.path, "consensus", "put", "greeting", "hello"]);
  assert.equal(put.code, 0, put.stderr);
  assert.match(put.stdout, /^ok: 'greeting' set at index \d+\n$/);
  const get = await cell(["--home", home.path, "consensus", "get", "greeting"]);
  assert.deepEqual([get.code, get.stdout], [0, "hello\n"]);
  const json = await cell(["--home", home.path, "consensus", "get", "greeting", "--json"]);
  const answer = JSON.parse(json.stdout);
  assert.deepEqual([answer.key, answer.value], ["greeting", "hello"]);
  const again = await cell(["--home", home.path, "consensus", "put", "greeting", "hi", "--json"]);
  assert.equal(JSON.parse(again.stdout).previous, "hello");
});

Deno.test("cell consensus get exits 1 for an absent key, and delete removes one", async () => {
  await using home = await tempHome();
  await using _members = await startLocalCluster({ ids: IDS, home: home.path });
  const absent = await cell(["--home", home.path, "consensus", "get", "missing"]);
  assert.equal(absent.code, 1);
  assert.match(absent.stderr, /key 'missing' is absent/);
  const json = await cell(["--home", home.path, "consensus", "get", "missing", "--json"]);
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.stdout).value, null);
  await cell(["--home", home.path, "consensus", "put", "k", "v"]);
  const del = await cell(["--home", home.path, "consensus", "delete", "k"]);
  assert.deepEqual([del.code, del.stdout.startsWith("ok: 'k' removed")], [0, true]);
});

Deno.test("cell consensus status lists every member with its role, and --json the leader", async () => {
  await using home = await tempHome();
  await using _members = await startLocalCluster({ ids: IDS, home: home.path });
  const put = await cell(["--home", home.path, "consensus", "put", "k", "v"]);
  assert.equal(put.code, 0, put.stderr);
  const human = await cell(["--home", home.path, "consensus", "status"]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^leader [abc] \(3 of 3 members answered\)\n/);
  assert.match(human.stdout, /MEMBER\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAST\s+LAG/);
  const json = JSON.parse(
    (await cell(["--home", home.path, "consensus", "status", "--json"])).stdout,
  );
  assert.ok(IDS.includes(json.leader));
  assert.deepEqual(json.members.map((m: { id: string }) => m.id), IDS);
  assert.equal(json.members.filter((m: { role: string }) => m.role === "leader").length, 1);
  const list = await cell(["--home", home.path, "consensus", "members"]);
  assert.equal(
    list.stdout,
    IDS.map((id) => `${id}${id === json.leader ? " (leader)" : ""}\n`).join(""),
  );
});

Deno.test("cell consensus says how to start members when none is found", async () => {
  await using home = await tempHome();
  const { code, stderr } = await cell(["--home", home.path, "consensus", "status"]);
  assert.equal(code, 1);
  assert.match(stderr, /No member of 'consensus' found/);
  assert.match(stderr, /cell deploy consensus cells\/consensus\/main.ts --instances 3/);
  const json = await cell(["--home", home.path, "consensus", "get", "k", "--json"]);
  assert.equal(JSON.parse(json.stdout).error.code, "UNAVAILABLE");
});

Deno.test("cell consensus rejects bad member ids and teaches with --help", async () => {
  const bad = await cell(["consensus", "status", "--members", "a,b c"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid instance id "b c"/);
  const help = await cell(["consensus", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /cell consensus put greeting hello/);
  const putHelp = await cell(["consensus", "put", "--help"]);
  assert.match(putHelp.stdout, /once the write is committed\s+\(on a majority of members' disks\)/);
});
