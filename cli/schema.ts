/**
 * `cell schema <cell>`: what a running cell serves, for people (methods, proteins, docs) or as
 * the JSON schema IR.
 *
 * @module
 */
import type { Command } from "commander";
import type { CellSchema, TypeRef } from "@cell/sdk";
import {
  act,
  compactJson,
  type ConnectFlags,
  connectTo,
  type Context,
  EXIT_OK,
  positiveInteger,
} from "./_common.ts";

/**
 * A field type as it reads in `cell schema`: `string`, `list<u32>`, `map<string, Item>`,
 * `"red" | "green"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatType } from "@cell/cli";
 * assert.ok(formatType({ kind: "list", items: { kind: "u32" } }) === "list<u32>");
 * ```
 */
export function formatType(type: TypeRef): string {
  switch (type.kind) {
    case "list":
      return `list<${formatType(type.items)}>`;
    case "map":
      return `map<string, ${formatType(type.values)}>`;
    case "enum":
      return type.values.map((v) => JSON.stringify(v)).join(" | ");
    case "ref":
      return type.name;
    default:
      return type.kind;
  }
}

/** `doc` indented by `indent`, line by line. */
function indented(doc: string, indent: string): string {
  return doc.split("\n").map((line) => `${indent}${line}`.trimEnd()).join("\n");
}

/** `text  — doc`, with a doc's later lines lined up under its first. */
function withDoc(text: string, doc: string | undefined, width: number, indent: string): string {
  if (doc === undefined || doc.trim() === "") return `${indent}${text}`;
  const head = `${indent}${text.padEnd(width)}  — `;
  const [first = "", ...rest] = doc.trim().split("\n");
  return [head + first, ...rest.map((line) => `${" ".repeat(head.length)}${line}`.trimEnd())]
    .join("\n");
}

/**
 * The human view of a schema: the cell, its hash and doc, each method as
 * `greet(Request) -> Response` with its doc, and each protein's fields with their docs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSchema } from "@cell/cli";
 * const text = formatSchema({
 *   cell: "my-service",
 *   protocol: 1,
 *   hash: "sha256:00",
 *   methods: [{ name: "greet", request: "Request", response: "Response", idempotent: true }],
 *   proteins: [{ name: "Request", fields: [{ name: "name", type: { kind: "string" }, optional: false }] }],
 * });
 * assert.ok(text.includes("greet(Request) -> Response  [idempotent]"));
 * ```
 */
export function formatSchema(schema: CellSchema): string {
  const out: string[] = [`${schema.cell}  ${schema.hash}  (protocol ${schema.protocol})`];
  if (schema.doc) out.push(indented(schema.doc.trim(), "  "));
  out.push("", `Methods (${schema.methods.length})`);
  if (schema.methods.length === 0) out.push("  (none)");
  for (const m of schema.methods) {
    out.push(`  ${m.name}(${m.request}) -> ${m.response}${m.idempotent ? "  [idempotent]" : ""}`);
    if (m.doc) out.push(indented(m.doc.trim(), "      "));
  }
  out.push("", `Proteins (${schema.proteins.length})`);
  for (const p of schema.proteins) {
    out.push(withDoc(p.name, p.doc, p.name.length, "  "));
    const lines = p.fields.map((f) => ({
      text: `${f.name}${f.optional ? "?" : ""}: ${formatType(f.type)}`,
      doc: f.doc,
    }));
    const width = Math.max(0, ...lines.map((l) => l.text.length));
    for (const line of lines) out.push(withDoc(line.text, line.doc, width, "    "));
    if (lines.length === 0) out.push("    (no fields)");
  }
  return `${out.join("\n")}\n`;
}

/** Flags of `cell schema`. */
interface SchemaFlags extends ConnectFlags {
  json?: boolean;
}

/** Adds `cell schema` to `program`. */
export function registerSchema(program: Command, ctx: Context): void {
  program
    .command("schema")
    .summary("show the methods and proteins a running cell serves")
    .description(
      "Ask the cell <cell> for its schema and show its methods (name(Request) -> Response, " +
        "idempotent or not) and proteins (fields, types, '?' for optional), with their docs. " +
        "With --json, print the schema IR that codegen and dynamic clients use.",
    )
    .argument("<cell>", "name of the cell, for example my-service")
    .option("-t, --timeout <ms>", "deadline in milliseconds", positiveInteger("--timeout"))
    .option(
      "-s, --socket <path>",
      "connect to this Unix socket instead of $CELL_HOME/run/<cell>.sock",
    )
    .option("--json", "print the schema IR as one line of JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ cell schema my-service
  $ cell schema my-service --json | jq '.methods[].name'`,
    )
    .action((cell: string, flags: SchemaFlags) =>
      act(ctx, { json: flags.json, cell, socket: flags.socket }, async () => {
        await using client = await connectTo(ctx, cell, flags);
        const schema = await client.$schema(
          flags.timeout === undefined ? {} : { timeoutMs: flags.timeout },
        );
        ctx.io.stdout(flags.json ? compactJson(schema) : formatSchema(schema));
        return EXIT_OK;
      })
    );
}
