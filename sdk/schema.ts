/**
 * The language-neutral schema IR of a cell: what `cell.schema` returns, what codegen and dynamic
 * clients work from. {@linkcode schemaOf} builds it from a service definition.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { TSchema } from "@sinclair/typebox";
import { CELL_PROTEIN, CELL_TYPE, proteinOfSchema, type ScalarType } from "./protein.ts";
import type { Service } from "./service.ts";
import { PROTOCOL_VERSION } from "./protocol.ts";

/** The type of a field in the IR. */
export type TypeRef =
  | { kind: ScalarType }
  | { kind: "list"; items: TypeRef }
  | { kind: "map"; values: TypeRef }
  | { kind: "enum"; values: string[] }
  | { kind: "ref"; name: string };

/** A field of a protein in the IR. */
export interface FieldSchema {
  name: string;
  type: TypeRef;
  optional: boolean;
  doc?: string;
}

/** A protein in the IR. */
export interface ProteinSchema {
  name: string;
  fields: FieldSchema[];
  doc?: string;
}

/** A method in the IR. */
export interface MethodSchema {
  name: string;
  /** Name of the request protein. */
  request: string;
  /** Name of the response protein. */
  response: string;
  idempotent: boolean;
  doc?: string;
}

/** The schema of a served cell. */
export interface CellSchema {
  /** The cell's name. */
  cell: string;
  /** Wire protocol version. */
  protocol: number;
  /** `sha256:<hex>` over methods and proteins without docs or the cell name. */
  hash: string;
  doc?: string;
  methods: MethodSchema[];
  /** Every protein reachable from the methods, in the order first met. */
  proteins: ProteinSchema[];
}

type JsonSchema = TSchema & {
  [CELL_TYPE]?: string;
  [CELL_PROTEIN]?: string;
  type?: string;
  items?: JsonSchema;
  patternProperties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
};

class ProteinCollector {
  readonly proteins: ProteinSchema[] = [];
  readonly sources = new Set<string>();
  readonly #seen = new Map<string, string>();

  add(schema: JsonSchema): string {
    const name = schema[CELL_PROTEIN]!;
    const properties = schema.properties ?? {};
    const required = new Set(schema.required ?? []);
    // Reserve the name before recursing so that recursive proteins terminate.
    const placeholder = this.#seen.get(name);
    const entry: ProteinSchema = { name, fields: [] };
    const declared = proteinOfSchema(schema);
    if (declared?.source) this.sources.add(declared.source);
    if (declared?.doc !== undefined) entry.doc = declared.doc;
    if (placeholder === undefined) {
      this.#seen.set(name, "");
      this.proteins.push(entry);
    }
    const fields = Object.entries(properties).map(([field, s]) => ({
      name: field,
      type: this.type(s, `${name}.${field}`),
      optional: !required.has(field),
    }));
    const shape = JSON.stringify(fields);
    if (placeholder !== undefined) {
      if (placeholder !== "" && placeholder !== shape) {
        throw new TypeError(
          `Two different proteins are named '${name}': give one of them another name`,
        );
      }
      return name;
    }
    entry.fields = fields;
    this.#seen.set(name, shape);
    return name;
  }

  type(s: JsonSchema, where: string): TypeRef {
    if (s[CELL_PROTEIN]) return { kind: "ref", name: this.add(s) };
    const declared = s[CELL_TYPE];
    switch (declared ?? inferType(s)) {
      case "list":
        return { kind: "list", items: this.type(s.items ?? ({} as JsonSchema), `${where}[]`) };
      case "map": {
        const values = Object.values(s.patternProperties ?? {})[0] ?? ({} as JsonSchema);
        return { kind: "map", values: this.type(values, `${where}{}`) };
      }
      case "enum":
        return { kind: "enum", values: (s.anyOf ?? []).map((x) => String(x.const)) };
      case "object":
        throw new TypeError(
          `Field ${where} is a plain object: declare it as a protein so other languages can name it`,
        );
      default:
        return { kind: (declared ?? inferType(s)) as ScalarType };
    }
  }
}

function inferType(s: JsonSchema): string {
  switch (s.type) {
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "number":
      return "f64";
    case "integer":
      return "i64";
    case "array":
      return "list";
    case "Uint8Array":
      return "bytes";
    case "object":
      return s.patternProperties ? "map" : "object";
    default:
      return "any";
  }
}

/** The hash of a schema's wire-relevant part: methods and proteins, without docs. */
export function schemaHash(methods: MethodSchema[], proteins: ProteinSchema[]): string {
  const strip = <T extends { doc?: string }>({ doc: _doc, ...rest }: T) => rest;
  const canonical = JSON.stringify({
    methods: methods.map(strip),
    proteins: proteins.map((p) => ({ ...strip(p), fields: p.fields.map(strip) })),
  });
  return `sha256:${createHash("sha256").update(canonical).digest("hex")}`;
}

/**
 * The schema IR of `definition` served as `cell`, without docs (see `withDocs` in `tsdoc.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { method, protein, schemaOf, service, t } from "@cell/sdk";
 * const Req = protein("Req", { name: t.string(), age: t.optional(t.u8()) });
 * const Svc = service({ greet: method(Req, Req) });
 * const schema = schemaOf("greeter", Svc);
 * assert.ok(schema.proteins[0]?.fields[1]?.optional === true);
 * assert.ok(schema.hash.startsWith("sha256:"));
 * ```
 */
export function schemaOf(cell: string, definition: Service): CellSchema {
  const collector = new ProteinCollector();
  const methods: MethodSchema[] = Object.entries(definition.methods).map(([name, m]) => ({
    name,
    request: collector.add(m.request.schema as JsonSchema),
    response: collector.add(m.response.schema as JsonSchema),
    idempotent: m.idempotent,
    ...(m.doc === undefined ? {} : { doc: m.doc }),
  }));
  const proteins = collector.proteins;
  if (definition.source) collector.sources.add(definition.source);
  const schema: CellSchema = {
    cell,
    protocol: PROTOCOL_VERSION,
    hash: schemaHash(methods, proteins),
    ...(definition.doc === undefined ? {} : { doc: definition.doc }),
    methods,
    proteins,
  };
  SOURCES.set(schema, [...collector.sources]);
  return schema;
}

const SOURCES = new WeakMap<CellSchema, string[]>();

/** The modules that declared a schema's service and proteins, where their TSDoc can be read. */
export function sourcesOf(schema: CellSchema): string[] {
  return SOURCES.get(schema) ?? [];
}
