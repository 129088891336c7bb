import assert from "node:assert/strict";
import { cell } from "./_testing.ts";
import { VERSION } from "./mod.ts";

const COMMANDS = ["init", "call", "schema", "ping"];

Deno.test("cell --help describes Cell, every command, examples, CELL_HOME and exit codes", async () => {
  const { code, stdout, stderr } = await cell(["--help"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.match(stdout, /^Usage: cell <command> \[options\]/);
  assert.match(stdout, /Cell is a Deno-first TypeScript RPC toolkit/);
  for (const command of COMMANDS) {
    assert.match(stdout, new RegExp(`^  ${command} .*\\S`, "m"), `summary of ${command}`);
  }
  for (
    const example of [
      "cell init --node-id 1",
      `cell call my-service greet '{"name":"World"}'`,
      "cell schema my-service",
    ]
  ) {
    assert.ok(stdout.includes(`$ ${example}\n`), example);
  }
  assert.match(stdout, /Environment:\n {2}CELL_HOME .*\n.*default: ~\/\.cell/);
  assert.match(stdout, /Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 /);
});

Deno.test("cell <command> --help shows each command's options and examples", async () => {
  for (const command of COMMANDS) {
    for (const args of [[command, "--help"], ["help", command]]) {
      const { code, stdout } = await cell(args);
      assert.equal(code, 0, args.join(" "));
      assert.match(stdout, new RegExp(`^Usage: cell ${command} `), args.join(" "));
      assert.match(stdout, new RegExp(`Examples:\n {2}\\$ cell ${command} `), args.join(" "));
    }
  }
});

Deno.test("cell --version prints the version of cli/deno.json", async () => {
  const { code, stdout } = await cell(["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout, `${VERSION}\n`);
  const config = JSON.parse(await Deno.readTextFile(new URL("./deno.json", import.meta.url)));
  assert.equal(VERSION, config.version);
  assert.equal(VERSION, "0.1.0");
});

Deno.test("cell exits with code 2 on an unknown command, an unknown option or no command", async () => {
  const unknown = await cell(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const option = await cell(["schema", "x", "--bogus"]);
  assert.equal(option.code, 2);
  assert.match(option.stderr, /unknown option '--bogus'/);
  const typo = await cell(["shcema"]);
  assert.match(typo.stderr, /Did you mean schema\?/);
  const none = await cell([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^Usage: cell/);
  const missing = await cell(["call", "my-service"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing required argument 'method'/);
});
