/**
 * The TypeScript generator: one standalone file, `<cell>.ts`, with an interface per protein and
 * a client class with a typed method per method. The file embeds its runtime (MessagePack,
 * framing, connections over `node:net` Unix sockets, discovery), so it needs no package and runs
 * on Deno and on Node with type stripping.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { typescriptGenerator } from "@cell/codegen";
 * import { method, protein, schemaOf, service, t } from "@cell/sdk";
 *
 * const Req = protein("Req", { name: t.string() });
 * const Res = protein("Res", { greeting: t.string() });
 * const schema = schemaOf("my-service", service({ greet: method(Req, Res) }));
 * const [file] = typescriptGenerator.generate(schema, { version: "0.1.0" });
 * assert.ok(file?.path === "my_service.ts");
 * assert.ok(file?.contents.includes("greet(request: Req, options?: CallOptions): Promise<Res>"));
 * ```
 *
 * @module
 */
import type { CellSchema, MethodSchema, ProteinSchema } from "@cell/sdk";
import {
  type GeneratedFile,
  generatedHeader,
  type GenerateOptions,
  type Generator,
} from "./plugin.ts";
import { docLines, type FieldType, SchemaIndex } from "./_ir.ts";
import { camelCase, pascalCase, quote, safeName, snakeCase } from "./_names.ts";
import { TS_RUNTIME, TS_RUNTIME_NAMES } from "./_runtime.ts";

/** Reserved words of TypeScript (strict mode), and type names that cannot name an interface. */
export const TS_KEYWORDS: ReadonlySet<string> = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends " +
    "false finally for function if import in instanceof new null return super switch this throw " +
    "true try typeof var void while with implements interface let package private protected " +
    "public static yield await async any boolean number string symbol bigint object never " +
    "unknown undefined type of as from get set declare namespace module require constructor")
    .split(" "),
);

/** Globals the runtime relies on: a generated type of the same name would shadow them. */
const TS_GLOBALS = (
  "Array ArrayBuffer AbortController AbortSignal BigInt Boolean DataView Date Error Function " +
  "Infinity JSON Map Math NaN Number Object Partial Promise PromiseLike RangeError Record " +
  "ReturnType Set String Symbol TextDecoder TextEncoder TypeError Uint8Array globalThis " +
  "setTimeout clearTimeout"
).split(" ");

/** Members of the runtime's `CellClient` that generated methods must not replace. */
const CLIENT_MEMBERS = [
  "call",
  "close",
  "connect",
  "serverSchemaHash",
  "constructor",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
];

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** A comment block of `lines` at `indent`, or nothing. */
function tsdoc(doc: string | undefined, indent: string): string[] {
  const lines = docLines(doc).map((l) => l.replaceAll("*/", "*\\/"));
  if (lines.length === 0) return [];
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => `${indent} * ${l}`.trimEnd()), `${indent} */`];
}

class TypeScriptEmitter {
  readonly #index: SchemaIndex;
  readonly #typeNames = new Map<string, string>();
  readonly #taken: Set<string>;

  constructor(readonly schema: CellSchema) {
    this.#index = new SchemaIndex(schema);
    this.#taken = new Set([...TS_RUNTIME_NAMES, ...TS_GLOBALS, "CELL", "SCHEMA_HASH", "METHODS"]);
    for (const p of schema.proteins) {
      this.#typeNames.set(p.name, safeName(p.name, TS_KEYWORDS, "pascal", this.#taken));
    }
  }

  type(t: FieldType): string {
    switch (t.kind) {
      case "scalar":
        return t.scalar === "bool" ? "boolean" : t.scalar === "string" ? "string" : "number";
      case "bytes":
        return "Uint8Array";
      case "any":
        return "unknown";
      case "list":
        return `Array<${this.type(t.items)}>`;
      case "map":
        return `Record<string, ${this.type(t.values)}>`;
      case "optional":
        return this.type(t.inner);
      case "enum":
        return t.values.map(quote).join(" | ") || "never";
      case "ref":
        return this.#typeNames.get(t.name)!;
    }
  }

  protein(p: ProteinSchema): string[] {
    const name = this.#typeNames.get(p.name)!;
    const fields = p.fields.flatMap((f) => {
      const t = this.#index.fieldType(p, f);
      const key = IDENTIFIER.test(f.name) ? f.name : quote(f.name);
      return [
        ...tsdoc(f.doc, "  "),
        `  ${key}${t.kind === "optional" ? "?" : ""}: ${this.type(t)};`,
      ];
    });
    return [
      ...tsdoc(p.doc ?? `The protein \`${p.name}\`.`, ""),
      fields.length === 0
        ? `export type ${name} = Record<string, never>;`
        : `export interface ${name} {`,
      ...(fields.length === 0 ? [] : [...fields, "}"]),
      "",
    ];
  }

  client(className: string): string[] {
    const taken = new Set(CLIENT_MEMBERS);
    const table: string[] = [];
    const methods = this.schema.methods.flatMap((m: MethodSchema) => {
      const name = safeName(m.name, new Set(CLIENT_MEMBERS), "camel", taken);
      table.push(`  ${quote(m.name)}: ${quote(name)},`);
      const req = this.#typeNames.get(m.request)!;
      const res = this.#typeNames.get(m.response)!;
      const doc = [
        ...docLines(m.doc),
        ...(m.doc ? [""] : []),
        `Calls \`${m.name}\`${
          m.idempotent ? " (idempotent: retried when the cell is unavailable)" : ""
        }.`,
      ].join("\n");
      return [
        ...tsdoc(doc, "  "),
        `  ${name}(request: ${req}, options?: CallOptions): Promise<${res}> {`,
        `    return this.call(${
          quote(m.name)
        }, request, options, ${m.idempotent}) as Promise<${res}>;`,
        "  }",
        "",
      ];
    });
    return [
      `/** Each method's IR name and the name of its method on \`${className}\`. */`,
      `export const METHODS: Readonly<Record<string, keyof ${className}>> = {`,
      ...table,
      "};",
      "",
      ...tsdoc(this.schema.doc ?? `A client of the cell \`${this.schema.cell}\`.`, ""),
      `export class ${className} extends CellClient {`,
      `  /** A client of \`${this.schema.cell}\`; connects at the first call or at \`connect()\`. */`,
      "  constructor(options: ClientOptions = {}) {",
      "    super(CELL, SCHEMA_HASH, options);",
      "  }",
      "",
      ...methods,
      "}",
    ];
  }

  render(version: string, base: string): string {
    const className = safeName(
      `${pascalCase(this.schema.cell)}Client`,
      TS_KEYWORDS,
      "pascal",
      this.#taken,
    );
    const example = this.schema.methods[0];
    const lines = [
      generatedHeader(version, "//"),
      `// A standalone client of the Cell service \`${this.schema.cell}\` (schema ${this.schema.hash}).`,
      "// Runs on Deno, and on Node >= 22.6 with type stripping (or tsx): it needs no package.",
      "//",
      `//   import { ${className} } from "./${base}.ts";`,
      `//   const client = new ${className}(); // finds the cell through $CELL_HOME`,
      ...(example
        ? [`//   const result = await client.${camelCase(example.name)}({ /* ... */ });`]
        : []),
      "//   await client.close();",
      "// deno-lint-ignore-file",
      "/* eslint-disable */",
      TS_RUNTIME,
      "// --- generated from the schema --------------------------------------------------------------",
      "",
      `/** The name of the cell this client calls. */`,
      `export const CELL = ${quote(this.schema.cell)};`,
      `/** The hash of the schema this client was generated from (see \`strictSchema\`). */`,
      `export const SCHEMA_HASH = ${quote(this.schema.hash)};`,
      "",
      ...this.#index.proteinsInDependencyOrder().flatMap((p) => this.protein(p)),
      ...this.client(className),
      "",
    ];
    return lines.join("\n");
  }
}

/** Generates a standalone TypeScript client, `<cell in snake_case>.ts`. */
export const typescriptGenerator: Generator = {
  language: "typescript",
  extension: "ts",
  generate(schema: CellSchema, options: GenerateOptions): GeneratedFile[] {
    const base = options.packageName ?? snakeCase(schema.cell);
    return [{
      path: `${base}.ts`,
      contents: new TypeScriptEmitter(schema).render(options.version, base),
    }];
  },
};
