/**
 * The Rust generator: a crate with one serde struct per protein and an async tokio client.
 *
 * Structs go through `rmp_serde::encode::to_vec_named`, so they are MessagePack maps keyed by
 * field name; `bytes` are `serde_bytes::ByteBuf` (MessagePack `bin`, not an array of numbers);
 * `any` is `rmpv::Value`; `f32` fields are `f64`, since the protocol sends every float as float64.
 * A protein that contains itself (not through a list or map) is boxed.
 *
 * Using a crate generated with `cell generate my-service -l rust -o ./my_service`:
 *
 * ```rust
 * let client = my_service::Client::connect(Options::default()).await?; // nucleus, else the socket
 * let resp = client.greet(&Request { name: "Rust".into() }).await?;
 * let options = CallOptions { timeout: Some(Duration::from_secs(2)), ..Default::default() };
 * match client.greet_with(&req, &options).await {
 *     Err(e) if e.code == Code::DeadlineExceeded => todo!(),
 *     other => todo!(),
 * }
 * ```
 *
 * Dropping a call's future (`tokio::time::timeout`, `select!`) cancels it: the client sends
 * CANCEL. `Options { socket_path, strict, .. }` skips discovery or refuses a schema-hash mismatch.
 * Calls that fail with `UNAVAILABLE` are retried (3 attempts) when the method is idempotent or
 * the cell provably never processed them.
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
import { quote, safeName, snakeCase, words } from "./_names.ts";
import { RUST_RUNTIME } from "./_rust_runtime.ts";

/** Rust's strict, reserved and weak keywords, and the names the generated code uses. */
const RUST_KEYWORDS: ReadonlySet<string> = new Set(
  ("as break const continue crate else enum extern false fn for if impl in let loop match mod " +
    "move mut pub ref return self Self static struct super trait true type unsafe use where " +
    "while async await dyn abstract become box do final macro override priv typeof unsized " +
    "virtual yield try gen union default cell").split(" "),
);

/** Names `lib.rs` uses unqualified: generated type names must not shadow them. */
const RUNTIME_TYPES: readonly string[] = (
  "Client Conn Options CallOptions CellError Code Frame FrameError Hello Value Serialize " +
  "Deserialize HashMap ByteBuf Option Result String Vec Box Some None Ok Err"
).split(" ");

function docs(doc: string | undefined, indent = ""): string[] {
  if (doc === undefined || doc.trim() === "") return [];
  return doc.trim().split("\n").map((l) =>
    `${indent}///${l.trim() === "" ? "" : ` ${l.trimEnd()}`}`
  );
}

function enumValues(t: FieldType): string[] | undefined {
  switch (t.kind) {
    case "enum":
      return t.values;
    case "optional":
      return enumValues(t.inner);
    case "list":
      return enumValues(t.items);
    case "map":
      return enumValues(t.values);
    default:
      return undefined;
  }
}

class RustWriter {
  readonly index: SchemaIndex;
  readonly types = new Map<string, string>();
  readonly enums = new Map<string, { type: string; variants: string[]; values: string[] }>();
  readonly fields = new Map<string, string[]>();
  readonly methods: string[];

  constructor(index: SchemaIndex) {
    this.index = index;
    const taken = new Set(RUNTIME_TYPES);
    for (const p of index.schema.proteins) {
      this.types.set(p.name, safeName(p.name, RUST_KEYWORDS, "pascal", taken));
    }
    for (const p of index.schema.proteins) {
      const own = new Set<string>();
      this.fields.set(p.name, p.fields.map((f) => safeName(f.name, RUST_KEYWORDS, "snake", own)));
      for (const f of p.fields) {
        const values = enumValues(index.fieldType(p, f));
        if (values === undefined) continue;
        const type = safeName(
          `${this.types.get(p.name)}_${f.name}`,
          RUST_KEYWORDS,
          "pascal",
          taken,
        );
        const variantsTaken = new Set<string>();
        const variants = values.map((v) =>
          safeName(words(v).join("_") || "empty", RUST_KEYWORDS, "pascal", variantsTaken)
        );
        this.enums.set(`${p.name}.${f.name}`, { type, variants, values });
      }
    }
    // Each method takes two names, `x` and `x_with`: first every method's own name, then the
    // `_with` names, renaming a method whose `_with` name is taken (`greet` beside `greet_with`).
    const own = new Set(["connect", "conn", "call"]);
    const methods = index.schema.methods;
    this.methods = methods.map((m) => safeName(m.name, RUST_KEYWORDS, "snake", own));
    this.methods.forEach((name, i) => {
      for (let n = 2; own.has(`${name}_with`); n++) {
        const next = safeName(`${methods[i]!.name}_${n}`, RUST_KEYWORDS, "snake", own);
        if (!own.has(`${next}_with`)) name = this.methods[i] = next;
      }
      own.add(`${name}_with`);
    });
  }

  /** Whether protein `from` reaches `to` through fields held inline (not in a list or map). */
  #reaches(from: string, to: string, seen = new Set<string>()): boolean {
    if (from === to) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    const p = this.index.protein(from);
    return p.fields.some((f) => {
      const t = this.index.fieldType(p, f);
      const inner = t.kind === "optional" ? t.inner : t;
      return inner.kind === "ref" && this.#reaches(inner.name, to, seen);
    });
  }

  /**
   * The Rust type of `t` for the field `where` (`Protein.field`). A protein held inline that
   * leads back to the field's own protein is boxed, or the struct would have an infinite size.
   */
  type(t: FieldType, where: string, inline = true): string {
    switch (t.kind) {
      case "scalar":
        if (t.scalar === "string") return "String";
        if (t.scalar === "f32") return "f64";
        return t.scalar;
      case "bytes":
        return "serde_bytes::ByteBuf";
      case "any":
        return "rmpv::Value";
      case "list":
        return `Vec<${this.type(t.items, where, false)}>`;
      case "map":
        return `std::collections::HashMap<String, ${this.type(t.values, where, false)}>`;
      case "optional":
        return `Option<${this.type(t.inner, where, inline)}>`;
      case "enum":
        return this.enums.get(where)!.type;
      case "ref": {
        const name = this.types.get(t.name)!;
        const owner = where.slice(0, where.lastIndexOf("."));
        return inline && this.#reaches(t.name, owner) ? `Box<${name}>` : name;
      }
    }
  }

  protein(p: ProteinSchema): string[] {
    const name = this.types.get(p.name)!;
    const names = this.fields.get(p.name)!;
    const out: string[] = [];
    for (const f of p.fields) {
      const e = this.enums.get(`${p.name}.${f.name}`);
      if (e === undefined) continue;
      out.push(
        `/// One of the values of \`${p.name}.${f.name}\`.`,
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]",
        `pub enum ${e.type} {`,
        ...e.variants.flatMap((
          v,
          i,
        ) => [`    #[serde(rename = ${quote(e.values[i]!)})]`, `    ${v},`]),
        "}",
        "",
      );
    }
    out.push(
      ...(p.doc ? docs(p.doc) : [`/// The protein \`${p.name}\`.`]),
      "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]",
      `pub struct ${name} {`,
    );
    p.fields.forEach((f, i) => {
      const t = this.index.fieldType(p, f);
      out.push(...docs(f.doc, "    "));
      out.push(
        f.optional
          ? `    #[serde(rename = ${
            quote(f.name)
          }, default, skip_serializing_if = "Option::is_none")]`
          : `    #[serde(rename = ${quote(f.name)})]`,
        `    pub ${names[i]}: ${this.type(t, `${p.name}.${f.name}`)},`,
      );
    });
    out.push("}", "");
    return out;
  }
}

function libFile(schema: CellSchema, w: RustWriter, version: string): string {
  const out = [
    generatedHeader(version, "//"),
    `//! A generated client of the cell ${quote(schema.cell)}.`,
    ...(schema.doc ? ["//!"] : []),
    ...docs(schema.doc).map((l) => l.replace("///", "//!")),
    "",
    "#![allow(non_camel_case_types, non_snake_case)]",
    "",
    "pub mod cell;",
    "",
    "pub use cell::{CallOptions, CellError, Client, Code, Conn, Options};",
    "use serde::{Deserialize, Serialize};",
    "",
    `/// The name the cell is served as.`,
    `pub const CELL_NAME: &str = ${quote(schema.cell)};`,
    "/// The hash of the schema this client was generated for.",
    `pub const SCHEMA_HASH: &str = ${quote(schema.hash)};`,
    `pub(crate) const CODEGEN_VERSION: &str = ${quote(version)};`,
    "",
    ...w.index.proteinsInDependencyOrder().flatMap((p) => w.protein(p)),
    "impl Client {",
  ];
  schema.methods.forEach((m, i) => {
    const name = w.methods[i]!;
    const req = w.types.get(m.request)!;
    const resp = w.types.get(m.response)!;
    out.push(
      "",
      `    /// Calls \`${m.name}\`${m.idempotent ? " (idempotent)" : ""}.`,
      ...(m.doc ? ["    ///", ...docs(m.doc, "    ")] : []),
      `    pub async fn ${name}(&self, req: &${req}) -> Result<${resp}, CellError> {`,
      `        self.call(${quote(m.name)}, ${m.idempotent}, req, &CallOptions::default()).await`,
      "    }",
      "",
      `    /// Calls \`${m.name}\` with a deadline or metadata; dropping the future sends CANCEL.`,
      `    pub async fn ${name}_with(&self, req: &${req}, options: &CallOptions) -> Result<${resp}, CellError> {`,
      `        self.call(${quote(m.name)}, ${m.idempotent}, req, options).await`,
      "    }",
    );
  });
  out.push("}", "");
  return out.join("\n");
}

/**
 * The Rust generator: `Cargo.toml`, `src/lib.rs` (types and client) and `src/cell.rs` (runtime).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rustGenerator } from "@cell/codegen";
 * import { method, protein, schemaOf, service, t } from "@cell/sdk";
 * const Req = protein("Req", { name: t.string() });
 * const files = rustGenerator.generate(schemaOf("greeter", service({ greet: method(Req, Req) })), {
 *   version: "0.1.0",
 * });
 * assert.ok(files.some((f) => f.contents.includes("pub async fn greet(")));
 * ```
 */
export const rustGenerator: Generator = {
  language: "rust",
  extension: "rs",
  generate(schema: CellSchema, options: GenerateOptions): GeneratedFile[] {
    const w = new RustWriter(new SchemaIndex(schema));
    const crate = safeName(options.packageName ?? snakeCase(schema.cell), RUST_KEYWORDS, "snake");
    return [
      {
        path: "Cargo.toml",
        contents: [
          generatedHeader(options.version, "#"),
          "[package]",
          `name = ${quote(crate)}`,
          `version = ${quote(options.version)}`,
          `edition = "2021"`,
          "",
          "[dependencies]",
          `tokio = { version = "1.38", features = ["rt-multi-thread", "net", "io-util", "sync", "time", "macros"] }`,
          `serde = { version = "1", features = ["derive"] }`,
          `rmp = "0.8"`,
          `rmp-serde = "1"`,
          `rmpv = { version = "1", features = ["with-serde"] }`,
          `serde_bytes = "0.11"`,
          "",
        ].join("\n"),
      },
      { path: "src/lib.rs", contents: libFile(schema, w, options.version) },
      {
        path: "src/cell.rs",
        contents: `${generatedHeader(options.version, "//")}\n${RUST_RUNTIME}`,
      },
    ];
  },
};
