/**
 * Walking the schema IR for generators: field types as a small closed union, proteins in
 * dependency order, and validation of an IR read from JSON.
 *
 * @module
 */
import type { CellSchema, FieldSchema, ProteinSchema, TypeRef } from "@cell/sdk";

/** A fixed-width number, a boolean or a string. */
export type Scalar =
  | "bool"
  | "string"
  | "f32"
  | "f64"
  | "i8"
  | "i16"
  | "i32"
  | "i64"
  | "u8"
  | "u16"
  | "u32"
  | "u64";

/** A resolved field type: what a generator switches over. */
export type FieldType =
  | { kind: "scalar"; scalar: Scalar }
  | { kind: "bytes" }
  | { kind: "any" }
  | { kind: "list"; items: FieldType }
  | { kind: "map"; values: FieldType }
  | { kind: "optional"; inner: FieldType }
  | { kind: "enum"; values: string[] }
  | { kind: "ref"; name: string; protein: ProteinSchema };

/** Every scalar kind of the IR. */
export const SCALARS: readonly Scalar[] = [
  "bool",
  "string",
  "f32",
  "f64",
  "i8",
  "i16",
  "i32",
  "i64",
  "u8",
  "u16",
  "u32",
  "u64",
];

/** The inclusive range of each integer scalar; 64-bit ones are limited to ±(2^53 - 1) by the SDK. */
export const INT_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  i8: [-128, 127],
  i16: [-32768, 32767],
  i32: [-2147483648, 2147483647],
  i64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  u8: [0, 255],
  u16: [0, 65535],
  u32: [0, 4294967295],
  u64: [0, Number.MAX_SAFE_INTEGER],
};

/** An IR with an index of its proteins by name. */
export class SchemaIndex {
  readonly schema: CellSchema;
  readonly #proteins = new Map<string, ProteinSchema>();

  constructor(schema: CellSchema) {
    this.schema = schema;
    for (const p of schema.proteins) this.#proteins.set(p.name, p);
  }

  /** The protein named `name`; throws a `TypeError` naming the dangling reference otherwise. */
  protein(name: string, where = name): ProteinSchema {
    const p = this.#proteins.get(name);
    if (p === undefined) {
      throw new TypeError(
        `The schema refers to protein '${name}' at ${where} but does not define it`,
      );
    }
    return p;
  }

  /** The resolved type of a type reference. */
  type(ref: TypeRef, where: string): FieldType {
    switch (ref.kind) {
      case "list":
        return { kind: "list", items: this.type(ref.items, `${where}[]`) };
      case "map":
        return { kind: "map", values: this.type(ref.values, `${where}{}`) };
      case "enum":
        return { kind: "enum", values: [...ref.values] };
      case "ref":
        return { kind: "ref", name: ref.name, protein: this.protein(ref.name, where) };
      case "bytes":
        return { kind: "bytes" };
      case "any":
        return { kind: "any" };
      default:
        if ((SCALARS as readonly string[]).includes(ref.kind)) {
          return { kind: "scalar", scalar: ref.kind as Scalar };
        }
        throw new TypeError(`Unknown type kind '${(ref as { kind: string }).kind}' at ${where}`);
    }
  }

  /** The resolved type of a field, wrapped in `optional` when the field may be absent. */
  fieldType(protein: ProteinSchema, field: FieldSchema): FieldType {
    const inner = this.type(field.type, `${protein.name}.${field.name}`);
    return field.optional ? { kind: "optional", inner } : inner;
  }

  /**
   * The proteins, each after the proteins its fields refer to (a stable topological order;
   * members of a reference cycle keep their IR order).
   */
  proteinsInDependencyOrder(): ProteinSchema[] {
    const out: ProteinSchema[] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (p: ProteinSchema) => {
      if (state.has(p.name)) return;
      state.set(p.name, "visiting");
      for (const f of p.fields) {
        for (const name of refsOf(f.type)) visit(this.protein(name, `${p.name}.${f.name}`));
      }
      state.set(p.name, "done");
      out.push(p);
    };
    for (const p of this.schema.proteins) visit(p);
    return out;
  }
}

/** The protein names a type reference mentions, in order. */
export function refsOf(ref: TypeRef): string[] {
  switch (ref.kind) {
    case "list":
      return refsOf(ref.items);
    case "map":
      return refsOf(ref.values);
    case "ref":
      return [ref.name];
    default:
      return [];
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * `value` checked as a {@linkcode CellSchema} (e.g. JSON from a cell or a file): throws a
 * `TypeError` naming the first problem, including dangling protein references.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSchema } from "./_ir.ts";
 * const ir = parseSchema({ cell: "c", protocol: 1, hash: "sha256:0", methods: [], proteins: [] });
 * assert.ok(ir.cell === "c");
 * ```
 */
export function parseSchema(value: unknown): CellSchema {
  const fail = (what: string): never => {
    throw new TypeError(`Not a Cell schema IR: ${what}`);
  };
  if (!isRecord(value)) fail("expected an object");
  const v = value as Record<string, unknown>;
  if (typeof v.cell !== "string" || v.cell === "") fail("'cell' must be a non-empty string");
  if (typeof v.protocol !== "number") fail("'protocol' must be a number");
  if (typeof v.hash !== "string") fail("'hash' must be a string");
  if (!Array.isArray(v.methods)) fail("'methods' must be an array");
  if (!Array.isArray(v.proteins)) fail("'proteins' must be an array");
  for (const m of v.methods as unknown[]) {
    if (
      !isRecord(m) || typeof m.name !== "string" || typeof m.request !== "string" ||
      typeof m.response !== "string"
    ) fail(`method ${JSON.stringify(m)} needs string 'name', 'request' and 'response'`);
  }
  for (const p of v.proteins as unknown[]) {
    if (!isRecord(p) || typeof p.name !== "string" || !Array.isArray(p.fields)) {
      fail(`protein ${JSON.stringify(p)} needs a string 'name' and a 'fields' array`);
    }
  }
  const schema = value as unknown as CellSchema;
  const index = new SchemaIndex(schema);
  for (const p of schema.proteins) {
    for (const f of p.fields) index.fieldType(p, f);
  }
  for (const m of schema.methods) {
    index.protein(m.request, `method ${m.name}`);
    index.protein(m.response, `method ${m.name}`);
  }
  return schema;
}

/** The first line of a doc comment, or the whole doc; `undefined` stays `undefined`. */
export function docLines(doc: string | undefined): string[] {
  return doc === undefined || doc.trim() === "" ? [] : doc.trim().split(/\r?\n/);
}
