import assert from "node:assert/strict";
import type { CellSchema } from "@cell/sdk";
import { cell, serveTestCell, tempHome } from "./_testing.ts";
import { formatSchema, formatType } from "./schema.ts";

Deno.test("cell schema shows methods, proteins, optional fields and their docs", async () => {
  await using home = await tempHome();
  await using server = await serveTestCell(home.path, "schema-human");
  const { code, stdout, stderr } = await cell(["--home", home.path, "schema", "schema-human"]);
  assert.equal(code, 0, stderr);
  const lines = stdout.split("\n");
  assert.equal(lines[0], `schema-human  ${server.schema.hash}  (protocol 1)`);
  assert.ok(lines.includes("  A test cell: greets, reverses bytes, and sleeps."), stdout);
  assert.ok(lines.includes("  greet(Greeting) -> Greeted  [idempotent]"), stdout);
  assert.ok(lines.includes("      Greets `name`."), stdout);
  assert.ok(lines.includes("  reverse(Blob) -> Blob"), stdout);
  assert.ok(lines.includes("  Greeting  — Who to greet."), stdout);
  assert.ok(lines.includes("    name: string     — The name to put in the greeting."), stdout);
  assert.ok(lines.includes("    excitement?: u8  — How many exclamation marks."), stdout);
  assert.ok(lines.includes("    metadata: map<string, string>  — The call's metadata."), stdout);
});

Deno.test("cell schema --json prints the schema IR the cell serves", async () => {
  await using home = await tempHome();
  await using server = await serveTestCell(home.path, "schema-json");
  const { code, stdout } = await cell(["--home", home.path, "schema", "schema-json", "--json"]);
  assert.equal(code, 0);
  assert.equal(stdout.trimEnd().split("\n").length, 1);
  const schema: CellSchema = JSON.parse(stdout);
  assert.equal(schema.cell, "schema-json");
  assert.equal(schema.hash, server.schema.hash);
  assert.deepEqual(schema.methods.map((m) => m.name), ["greet", "reverse", "stall"]);
  assert.equal(schema.methods[0]?.doc, "Greets `name`.");
});

Deno.test("cell schema reports a cell that is not running with exit code 1 and UNAVAILABLE", async () => {
  await using home = await tempHome();
  const { code, stderr } = await cell(["--home", home.path, "schema", "schema-missing"]);
  assert.equal(code, 1);
  assert.match(stderr, /^error: UNAVAILABLE: .*schema-missing\.sock/);
  const json = await cell(["--home", home.path, "schema", "schema-missing", "--json"]);
  assert.equal(JSON.parse(json.stdout).error.code, "UNAVAILABLE");
});

Deno.test("formatType() writes lists, maps, enums and references the way schemas read", () => {
  assert.equal(formatType({ kind: "u32" }), "u32");
  assert.equal(formatType({ kind: "list", items: { kind: "ref", name: "Item" } }), "list<Item>");
  assert.equal(
    formatType({ kind: "map", values: { kind: "list", items: { kind: "bytes" } } }),
    "map<string, list<bytes>>",
  );
  assert.equal(formatType({ kind: "enum", values: ["red", "green"] }), '"red" | "green"');
});

Deno.test("formatSchema() lines up multi-line docs and marks cells without methods", () => {
  const text = formatSchema({
    cell: "empty",
    protocol: 1,
    hash: "sha256:00",
    methods: [],
    proteins: [{
      name: "P",
      doc: "First line.\nSecond line.",
      fields: [{ name: "a", type: { kind: "bool" }, optional: true, doc: "One.\nTwo." }],
    }],
  });
  assert.equal(
    text,
    [
      "empty  sha256:00  (protocol 1)",
      "",
      "Methods (0)",
      "  (none)",
      "",
      "Proteins (1)",
      "  P  — First line.",
      "       Second line.",
      "    a?: bool  — One.",
      "                Two.",
      "",
    ].join("\n"),
  );
});
