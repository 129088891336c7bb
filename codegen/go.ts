/**
 * The Go generator: a Go module with one struct per protein, a multiplexed client over Unix
 * sockets with `context.Context` deadlines and cancellation, and typed errors.
 *
 * MessagePack is `github.com/vmihailenco/msgpack/v5`: the most used and maintained Go
 * MessagePack library, with struct tags, raw messages and a streaming encoder whose
 * `EncodeInt`/`EncodeUint` write the smallest integer forms the protocol asks for. Structs
 * decode through its reflection (tags), and encode through generated `EncodeMsgpack` methods, so
 * that a nil slice, map or `[]byte` of a required field goes out empty instead of nil, and fields
 * keep the schema's order. `f32` fields are `float64` in Go: the wire carries every float as
 * float64, which the library will not decode into a `float32`.
 *
 * Using a client generated with `cell generate my-service -l go -o ./myservice`:
 *
 * ```go
 * client, err := myservice.Connect(ctx, myservice.Options{}) // nucleus, else $CELL_HOME/run/my-service.sock
 * if err != nil { return err }
 * defer client.Close()
 * ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // the call's deadline; cancel() sends CANCEL
 * defer cancel()
 * resp, err := client.Greet(ctx, myservice.Request{Name: "Go"})
 * var ce *myservice.CellError
 * if errors.As(err, &ce) && ce.Code == myservice.CodeNotFound { ... }
 * ```
 *
 * `Options{SocketPath: ...}` skips discovery, `Options{Strict: true}` refuses a cell whose schema
 * hash differs from the generated one, and `WithMetadata(...)` sends call metadata. Calls that
 * fail with `CodeUnavailable` are retried (3 attempts) when the method is idempotent or the cell
 * provably never processed them.
 *
 * @module
 */
import type { CellSchema, ProteinSchema } from "@cell/sdk";
import {
  type GeneratedFile,
  generatedHeader,
  type GenerateOptions,
  type Generator,
} from "./plugin.ts";
import { type FieldType, SchemaIndex } from "./_ir.ts";
import { pascalCase, quote, safeName, words } from "./_names.ts";
import { GO_RUNTIME } from "./_go_runtime.ts";

/** Go's keywords and the predeclared names a package name must not shadow. */
const GO_KEYWORDS: ReadonlySet<string> = new Set(
  ("break case chan const continue default defer else fallthrough for func go goto if import " +
    "interface map package range return select struct switch type var any bool byte error " +
    "string int uint true false nil iota main init").split(" "),
);

/**
 * Exported names of the runtime (top-level declarations and constants of `runtime/cell.go`) and
 * of `client.go`, which generated type and method names must not take.
 */
const RUNTIME_NAMES: readonly string[] = [
  ...GO_RUNTIME.matchAll(/^(?:func|type|const|var) ([A-Z]\w*)|^\t([A-Z]\w*)\s+(?:\w+\s+)?=/gm),
].map((m) => (m[1] ?? m[2])!).concat("CellName", "SchemaHash");

/** The msgpack module and its one dependency, pinned with their go.sum lines. */
const MSGPACK = "github.com/vmihailenco/msgpack/v5";
const MSGPACK_VERSION = "v5.4.1";
const GO_SUM =
  `github.com/vmihailenco/msgpack/v5 v5.4.1 h1:cQriyiUvjTwOHg8QZaPihLWeRAAVoCpE00IUPn0Bjt8=
github.com/vmihailenco/msgpack/v5 v5.4.1/go.mod h1:GaZTsDaehaPpQVyxrf5mtQlH+pc21PIudVV/E3rRQok=
github.com/vmihailenco/tagparser/v2 v2.0.0 h1:y09buUbR+b5aycVFQs/g70pqKVZNBmxwAhO7/IwNM9g=
github.com/vmihailenco/tagparser/v2 v2.0.0/go.mod h1:Wri+At7QHww0WTrCBeu4J6bNtoV6mEfg5OIWRZA9qds=
`;

const INT_TYPES: Record<string, string> = {
  i8: "int8",
  i16: "int16",
  i32: "int32",
  i64: "int64",
  u8: "uint8",
  u16: "uint16",
  u32: "uint32",
  u64: "uint64",
};

/** `name` as an exported Go identifier (an upper-case first letter), unique in `taken`. */
function exported(name: string, taken: Set<string>): string {
  return safeName(
    /^[A-Z]/.test(pascalCase(name)) ? name : `x_${name}`,
    GO_KEYWORDS,
    "pascal",
    taken,
  );
}

function comment(doc: string | undefined, indent = ""): string[] {
  if (doc === undefined || doc.trim() === "") return [];
  return doc.trim().split("\n").map((l) =>
    `${indent}//${l.trim() === "" ? "" : ` ${l.trimEnd()}`}`
  );
}

/** Names of everything a schema declares, decided once so every file agrees. */
class GoNames {
  readonly types = new Map<string, string>();
  readonly enums = new Map<string, { type: string; consts: string[] }>();
  readonly fields = new Map<string, string[]>();
  readonly methods: string[];

  constructor(index: SchemaIndex) {
    const taken = new Set(RUNTIME_NAMES);
    for (const p of index.schema.proteins) {
      this.types.set(p.name, exported(p.name, taken));
    }
    for (const p of index.schema.proteins) {
      const own = new Set(["EncodeMsgpack"]);
      this.fields.set(p.name, p.fields.map((f) => exported(f.name, own)));
      for (const f of p.fields) {
        const enumOf = (t: FieldType): string[] | undefined =>
          t.kind === "enum"
            ? t.values
            : t.kind === "optional"
            ? enumOf(t.inner)
            : t.kind === "list"
            ? enumOf(t.items)
            : t.kind === "map"
            ? enumOf(t.values)
            : undefined;
        const values = enumOf(index.fieldType(p, f));
        if (values === undefined) continue;
        const type = exported(`${this.types.get(p.name)}_${f.name}`, taken);
        const consts = values.map((v) =>
          exported(`${type}_${words(v).join("_") || "empty"}`, taken)
        );
        this.enums.set(`${p.name}.${f.name}`, { type, consts });
      }
    }
    const own = new Set(["Conn", "Close", "Call"]);
    this.methods = index.schema.methods.map((m) => exported(m.name, own));
  }
}

class GoWriter {
  readonly #index: SchemaIndex;
  readonly #names: GoNames;

  constructor(index: SchemaIndex, names: GoNames) {
    this.#index = index;
    this.#names = names;
  }

  type(t: FieldType, where: string): string {
    switch (t.kind) {
      case "scalar":
        if (t.scalar === "f32" || t.scalar === "f64") return "float64";
        return INT_TYPES[t.scalar] ?? t.scalar;
      case "bytes":
        return "[]byte";
      case "any":
        return "any";
      case "list":
        return `[]${this.type(t.items, where)}`;
      case "map":
        return `map[string]${this.type(t.values, where)}`;
      case "optional":
        return `*${this.type(t.inner, where)}`;
      case "enum":
        return this.#names.enums.get(where)!.type;
      case "ref":
        return this.#names.types.get(t.name)!;
    }
  }

  /** Statements that encode `expr` of type `t` with the writer `w`. */
  encode(t: FieldType, expr: string, indent: string, depth = 0): string[] {
    switch (t.kind) {
      case "scalar":
        if (t.scalar === "bool") return [`${indent}w.boolean(${expr})`];
        if (t.scalar === "string") return [`${indent}w.str(${expr})`];
        if (t.scalar === "f32" || t.scalar === "f64") return [`${indent}w.float(${expr})`];
        if (t.scalar.startsWith("u")) return [`${indent}w.uint(uint64(${expr}))`];
        return [`${indent}w.int(int64(${expr}))`];
      case "bytes":
        return [`${indent}w.bytes(${expr})`];
      case "any":
        return [`${indent}w.value(${expr})`];
      case "enum":
        return [`${indent}w.str(string(${expr}))`];
      case "ref":
        return [`${indent}${expr.startsWith("*") ? `(${expr})` : expr}.encodeTo(w)`];
      case "optional":
        return this.encode(t.inner, `*${expr}`, indent, depth);
      case "list":
        return [
          `${indent}w.arrayLen(len(${expr}))`,
          `${indent}for _, v${depth} := range ${expr} {`,
          ...this.encode(t.items, `v${depth}`, `${indent}\t`, depth + 1),
          `${indent}}`,
        ];
      case "map":
        return [
          `${indent}w.mapLen(len(${expr}))`,
          `${indent}for k${depth}, v${depth} := range ${expr} {`,
          `${indent}\tw.str(k${depth})`,
          ...this.encode(t.values, `v${depth}`, `${indent}\t`, depth + 1),
          `${indent}}`,
        ];
    }
  }

  protein(p: ProteinSchema): string[] {
    const name = this.#names.types.get(p.name)!;
    const fieldNames = this.#names.fields.get(p.name)!;
    const out = comment(p.doc ? `${name}: ${p.doc}` : `${name} is the protein ${p.name}.`);
    out.push(`type ${name} struct {`);
    p.fields.forEach((f, i) => {
      const t = this.#index.fieldType(p, f);
      if (i > 0) out.push("");
      out.push(...comment(f.doc, "\t"));
      const tag = `msgpack:${quote(f.optional ? `${f.name},omitempty` : f.name)}`;
      out.push(`\t${fieldNames[i]} ${this.type(t, `${p.name}.${f.name}`)} \`${tag}\``);
    });
    out.push("}", "");
    const required = p.fields.filter((f) => !f.optional).length;
    out.push(
      `// EncodeMsgpack writes m as a map keyed by field name, leaving out absent optional fields.`,
      `func (m ${name}) EncodeMsgpack(enc *msgpack.Encoder) error {`,
      "\tw := &writer{e: enc}",
      "\tm.encodeTo(w)",
      "\treturn w.err",
      "}",
      "",
      `func (m ${name}) encodeTo(w *writer) {`,
    );
    if (p.fields.some((f) => f.optional)) {
      out.push(`\tn := ${required}`);
      p.fields.forEach((f, i) => {
        if (f.optional) out.push(`\tif m.${fieldNames[i]} != nil {`, "\t\tn++", "\t}");
      });
      out.push("\tw.mapLen(n)");
    } else {
      out.push(`\tw.mapLen(${required})`);
    }
    p.fields.forEach((f, i) => {
      const t = this.#index.fieldType(p, f);
      const expr = `m.${fieldNames[i]}`;
      if (f.optional) {
        out.push(`\tif ${expr} != nil {`, `\t\tw.str(${quote(f.name)})`);
        out.push(...this.encode(t, expr, "\t\t"), "\t}");
      } else {
        out.push(`\tw.str(${quote(f.name)})`, ...this.encode(t, expr, "\t"));
      }
    });
    out.push("}", "");
    return out;
  }

  enums(p: ProteinSchema): string[] {
    const out: string[] = [];
    for (const f of p.fields) {
      const e = this.#names.enums.get(`${p.name}.${f.name}`);
      if (e === undefined) continue;
      const values = (function find(t: FieldType): string[] {
        return t.kind === "enum"
          ? t.values
          : t.kind === "optional"
          ? find(t.inner)
          : t.kind === "list"
          ? find(t.items)
          : t.kind === "map"
          ? find(t.values)
          : [];
      })(this.#index.fieldType(p, f));
      out.push(
        `// ${e.type} is one of the values of ${p.name}.${f.name}.`,
        `type ${e.type} string`,
        "",
      );
      values.forEach((v, i) => {
        out.push(
          `// ${e.consts[i]} is ${quote(v)}.`,
          `const ${e.consts[i]} ${e.type} = ${quote(v)}`,
          "",
        );
      });
    }
    return out;
  }
}

/** The Go package name for a cell: its words joined, lower case (`my-service` → `myservice`). */
function goPackageName(schema: CellSchema, options: GenerateOptions): string {
  const base = options.packageName ?? (words(schema.cell).join("") || "cell");
  return safeName(base.toLowerCase().replace(/[^a-z0-9_]/g, ""), GO_KEYWORDS, "snake");
}

function clientFile(schema: CellSchema, names: GoNames, version: string): string[] {
  const out = [
    `// CellName is the name the cell is served as.`,
    `const CellName = ${quote(schema.cell)}`,
    "",
    "// SchemaHash is the hash of the schema this client was generated for.",
    `const SchemaHash = ${quote(schema.hash)}`,
    "",
    `const codegenVersion = ${quote(version)}`,
    "",
  ];
  schema.methods.forEach((m, i) => {
    const name = names.methods[i]!;
    const req = names.types.get(m.request)!;
    const resp = names.types.get(m.response)!;
    out.push(
      `// ${name} calls ${quote(m.name)}${m.idempotent ? " (idempotent)" : ""}.`,
      ...(m.doc ? ["//", ...comment(m.doc)] : []),
      `func (c *Client) ${name}(ctx context.Context, req ${req}, opts ...CallOption) (*${resp}, error) {`,
      `\tvar resp ${resp}`,
      `\tif err := c.Call(ctx, ${
        quote(m.name)
      }, ${m.idempotent}, req, &resp, opts...); err != nil {`,
      "\t\treturn nil, err",
      "\t}",
      "\treturn &resp, nil",
      "}",
      "",
    );
  });
  return out;
}

/**
 * The Go generator: `go.mod`, `go.sum`, `types.go`, `client.go` and `cell.go` (the runtime).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { goGenerator } from "@cell/codegen";
 * import { method, protein, schemaOf, service, t } from "@cell/sdk";
 * const Req = protein("Req", { name: t.string() });
 * const files = goGenerator.generate(schemaOf("greeter", service({ greet: method(Req, Req) })), {
 *   version: "0.1.0",
 * });
 * assert.ok(files.some((f) => f.contents.includes("func (c *Client) Greet(")));
 * ```
 */
export const goGenerator: Generator = {
  language: "go",
  extension: "go",
  generate(schema: CellSchema, options: GenerateOptions): GeneratedFile[] {
    const index = new SchemaIndex(schema);
    const names = new GoNames(index);
    const writer = new GoWriter(index, names);
    const pkg = goPackageName(schema, options);
    const header = [
      generatedHeader(options.version, "//"),
      `// Code generated by cell-codegen ${options.version}. DO NOT EDIT.`,
      "",
      `package ${pkg}`,
      "",
    ];
    const go = (
      path: string,
      imports: string[],
      body: string[],
      doc: string[] = [],
    ): GeneratedFile => ({
      path,
      contents: [
        ...header.slice(0, 3),
        ...doc,
        ...header.slice(3),
        ...(imports.length ? ["import (", ...imports.map((i) => `\t${i}`), ")", ""] : []),
        ...body,
      ].join("\n").replace(/\n+$/, "\n"),
    });
    const proteins = index.proteinsInDependencyOrder();
    const files = [
      {
        path: "go.mod",
        contents: `${generatedHeader(options.version, "//")}\n\nmodule ${pkg}\n\ngo 1.22\n\n` +
          `require ${MSGPACK} ${MSGPACK_VERSION}\n\n` +
          `require github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect\n`,
      },
      { path: "go.sum", contents: GO_SUM },
      go(
        "client.go",
        schema.methods.length > 0 ? [`"context"`] : [],
        clientFile(schema, names, options.version),
        comment(
          `Package ${pkg} is a generated client of the cell ${quote(schema.cell)}.` +
            (schema.doc ? `\n\n${schema.doc}` : ""),
        ),
      ),
      {
        path: "cell.go",
        contents: [...header, GO_RUNTIME.replace(/^package \w+\n+/, "")].join("\n"),
      },
    ];
    if (proteins.length > 0) {
      files.push(
        go("types.go", [`"github.com/vmihailenco/msgpack/v5"`], [
          ...proteins.flatMap((p) => writer.enums(p)),
          ...proteins.flatMap((p) => writer.protein(p)),
        ]),
      );
    }
    return files;
  },
};
