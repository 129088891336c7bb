import assert from "node:assert/strict";
import { join } from "node:path";
import { cell, serveTestCell, startMyService, tempHome } from "./_testing.ts";

Deno.test("cell call prints the response as indented JSON", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "call-pretty");
  const { code, stdout, stderr } = await cell([
    "--home",
    home.path,
    "call",
    "call-pretty",
    "greet",
    '{"name":"World"}',
  ]);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, '{\n  "greeting": "Hello, World!",\n  "metadata": {}\n}\n');
  assert.equal(stderr, "");
});

Deno.test("cell call --json prints the response as one line of JSON", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "call-json");
  const { code, stdout } = await cell(
    ["--home", home.path, "call", "call-json", "greet", '{"name":"Ada","excitement":3}', "--json"],
  );
  assert.equal(code, 0);
  assert.equal(stdout.trimEnd().split("\n").length, 1);
  assert.deepEqual(JSON.parse(stdout), { greeting: "Hello, Ada!!!", metadata: {} });
});

Deno.test("cell call reads the payload from stdin when it is '-' or left out", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "call-stdin");
  const dash = await cell(
    ["--home", home.path, "call", "call-stdin", "greet", "-", "--json"],
    '{"name":"Pipe"}\n',
  );
  assert.equal(dash.code, 0, dash.stderr);
  assert.equal(JSON.parse(dash.stdout).greeting, "Hello, Pipe!");
  const absent = await cell(
    ["--home", home.path, "call", "call-stdin", "greet", "--json"],
    '{"name":"Stdin"}',
  );
  assert.equal(absent.code, 0, absent.stderr);
  assert.equal(JSON.parse(absent.stdout).greeting, "Hello, Stdin!");
  // No stdin (a terminal) and no argument: the payload is {}, which greet rejects.
  const none = await cell(["--home", home.path, "call", "call-stdin", "greet"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /INVALID_ARGUMENT: Invalid Greeting: \/name/);
  const dashOnTerminal = await cell(["--home", home.path, "call", "call-stdin", "greet", "-"]);
  assert.equal(dashOnTerminal.code, 2);
  assert.match(dashOnTerminal.stderr, /stdin is a terminal/);
});

Deno.test("cell call sends --metadata pairs with the call", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "call-meta");
  const { code, stdout } = await cell([
    "--home",
    home.path,
    "call",
    "call-meta",
    "greet",
    '{"name":"M"}',
    "-m",
    "trace-id=abc",
    "--metadata",
    "eq=a=b",
    "--json",
  ]);
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(stdout).metadata, { "trace-id": "abc", eq: "a=b" });

  const bad = await cell(["--home", home.path, "call", "call-meta", "greet", "{}", "-m", "oops"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Metadata "oops" is not key=value/);
});

Deno.test("cell call sends {$bytes} as bytes and prints bytes as base64 and bigints as strings", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "call-bytes");
  const { code, stdout, stderr } = await cell([
    "--home",
    home.path,
    "call",
    "call-bytes",
    "reverse",
    '{"data":{"$bytes":"AQID"}}',
    "--json",
  ]);
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stdout), {
    data: { $bytes: "AwIB" },
    extra: "9223372036854775808",
  });
});

Deno.test("cell call reports invalid JSON with exit code 2, where it is wrong and an example", async () => {
  const { code, stdout, stderr } = await cell(["call", "my-service", "greet", '{"name":World}']);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /^error: The payload is not valid JSON: .* at line 1, column 9\n/);
  assert.ok(stderr.includes('  {"name":World}\n          ^\n'), stderr);
  assert.ok(stderr.includes(`example: cell call my-service greet '{"name":"World"}'`));

  const json = await cell(["call", "my-service", "greet", "{name:1}", "--json"]);
  assert.equal(json.code, 2);
  const error = JSON.parse(json.stdout).error;
  assert.equal(error.code, "INVALID_ARGUMENT");
  assert.match(error.message, /line 1, column 2/);

  const array = await cell(["call", "my-service", "greet", "[1,2]"]);
  assert.equal(array.code, 2);
  assert.match(array.stderr, /must be a JSON object, not an array/);
});

Deno.test("cell call reports an unknown method with exit code 1 and UNIMPLEMENTED", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "call-unknown");
  const { code, stderr } = await cell(["--home", home.path, "call", "call-unknown", "nope", "{}"]);
  assert.equal(code, 1);
  assert.match(stderr, /^error: UNIMPLEMENTED: .*'nope'.*greet/);

  const json = await cell(["--home", home.path, "call", "call-unknown", "nope", "--json"], "");
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.stdout).error.code, "UNIMPLEMENTED");
});

Deno.test("cell call reports a cell that is not running with exit code 1, UNAVAILABLE and where it looked", async () => {
  await using home = await tempHome();
  const { code, stderr } = await cell(["--home", home.path, "call", "no-such-cell", "greet", "{}"]);
  assert.equal(code, 1);
  assert.match(stderr, /^error: UNAVAILABLE: /);
  assert.ok(stderr.includes(join(home.path, "run", "no-such-cell.sock")), stderr);
  assert.match(stderr, /hint: .*CELL_HOME.*Start 'no-such-cell'.*--socket/s);

  const socket = join(home.path, "elsewhere.sock");
  const viaSocket = await cell(["call", "no-such-cell", "greet", "{}", "--socket", socket]);
  assert.equal(viaSocket.code, 1);
  assert.match(viaSocket.stderr, new RegExp(`hint: check that 'no-such-cell' .* ${socket}`));

  const json = await cell(["--home", home.path, "call", "no-such-cell", "greet", "{}", "--json"]);
  assert.equal(json.code, 1);
  const { error } = JSON.parse(json.stdout);
  assert.equal(error.code, "UNAVAILABLE");
  assert.equal(typeof error.message, "string");
  assert.equal(json.stderr, "");
});

Deno.test("cell call prints the field errors of a rejected payload", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "call-invalid");
  const { code, stderr } = await cell(
    ["--home", home.path, "call", "call-invalid", "greet", '{"name":3}'],
  );
  assert.equal(code, 1);
  assert.match(stderr, /error: INVALID_ARGUMENT: Invalid Greeting: \/name/);
  assert.match(stderr, /details: \{\n {2}"protein": "Greeting"/);
});

Deno.test("cell call --timeout gives up on a slow call with DEADLINE_EXCEEDED", async () => {
  await using home = await tempHome();
  await using _server = await serveTestCell(home.path, "call-slow");
  const started = Date.now();
  const { code, stderr } = await cell(
    ["--home", home.path, "call", "call-slow", "stall", '{"name":"x"}', "--timeout", "200"],
  );
  assert.equal(code, 1);
  assert.match(stderr, /DEADLINE_EXCEEDED/);
  assert.ok(Date.now() - started < 5000);
  const bad = await cell(["call", "call-slow", "stall", "{}", "--timeout", "soon"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--timeout must be a positive integer/);
});

Deno.test("cell call --socket connects to the socket it is given", async () => {
  await using home = await tempHome();
  await using other = await tempHome();
  await using _server = await serveTestCell(other.path, "call-socket");
  const socket = join(other.path, "run", "call-socket.sock");
  const { code, stdout } = await cell([
    "--home",
    home.path,
    "call",
    "call-socket",
    "greet",
    '{"name":"Socket"}',
    "--socket",
    socket,
    "--json",
  ]);
  assert.equal(code, 0);
  assert.equal(JSON.parse(stdout).greeting, "Hello, Socket!");
});

Deno.test("cell call rejects an invalid cell name with exit code 2", async () => {
  const { code, stderr } = await cell(["call", "Not A Cell", "greet", "{}"]);
  assert.equal(code, 2);
  assert.match(stderr, /Cell name "Not A Cell" is invalid/);
});

Deno.test("cell call in a subprocess greets the example my-service served by another", async () => {
  await using home = await tempHome();
  await using service = await startMyService(home.path);
  assert.match(service.ready, /my-service serving on .*my-service\.sock/);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./main.ts", import.meta.url).pathname,
      "call",
      "my-service",
      "greet",
      '{"name":"World"}',
    ],
    env: { CELL_HOME: home.path, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.deepEqual(JSON.parse(stdout), { greeting: "Hello, World!" });
});
