/**
 * Schema macros, the TypeScript form of the seed's `#[cell_macro]` and `#[expand(cell, macro)]`:
 * a cell exports functions over the schema IR ({@linkcode proteinMacro}: a protein in, fields to
 * add out) or from the IR to source files ({@linkcode codegenMacro}), serves them over RPC
 * ({@linkcode macroService}), and other cells expand them ({@linkcode expand},
 * {@linkcode expandFiles}). Expansions are deterministic and cached under
 * `$CELL_HOME/cache/macros/` by the hash of the macro's declaration and of the input, so a cached
 * expansion needs no running macro cell.
 *
 * @module
 */
import type { TProperties } from "@sinclair/typebox";
import { CellError } from "./errors.ts";
import type { Fields, Protein, SchemasOf } from "./protein.ts";
import { type CellSchema, type FieldSchema, type ProteinSchema, schemaHash } from "./schema.ts";
import { type Implementation, service } from "./service.ts";
import { PROTOCOL_VERSION } from "./protocol.ts";
import { fieldsInput, type ProteinInput, sha256 } from "./_macro_ir.ts";

import {
  type CodegenMacro,
  type Macro,
  type MacroFile,
  MacroService,
  type ProteinMacro,
} from "./_macro_wire.ts";

export {
  type CodegenMacro,
  ExpandedFile,
  ExpandRequest,
  ExpandResponse,
  type Macro,
  type MacroFile,
  MacroInfo,
  MacroList,
  MacroService,
  MacrosRequest,
  type ProteinMacro,
} from "./_macro_wire.ts";
export {
  expand,
  expandFiles,
  type ExpandFilesOptions,
  type ExpandOptions,
} from "./_macro_client.ts";

/** Options of {@linkcode proteinMacro}. */
export interface ProteinMacroOptions<F extends Fields> {
  /** The fields the macro adds: their types are what expanding proteins see statically. */
  fields: F;
  /**
   * Computes the fields to add from the input protein (and the proteins it refers to). They
   * must match `fields`: clients check the served output against the declaration.
   * @default {the IR of `fields`}
   */
  expand?: (input: ProteinSchema, proteins: ProteinSchema[]) => FieldSchema[];
  /** Documentation, listed by the `macros` method. */
  doc?: string;
  /**
   * Part of the declaration hash: change it when `expand` changes, to invalidate cached
   * expansions.
   * @default {"1"}
   */
  version?: string;
}

/** Options of {@linkcode codegenMacro}. */
export interface CodegenMacroOptions {
  /** Documentation, listed by the `macros` method. */
  doc?: string;
  /**
   * Part of the declaration hash: change it when the generator changes, to invalidate cached
   * expansions.
   * @default {"1"}
   */
  version?: string;
}

const MACRO_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

function checkName(name: string): void {
  if (typeof name !== "string" || !MACRO_NAME.test(name)) {
    throw new TypeError(
      `Macro name ${JSON.stringify(name)} is invalid: use letters, digits and '_', ` +
        "starting with a letter (for example 'add_field_macro')",
    );
  }
}

/**
 * Declares a macro that adds fields to a protein, the seed's `#[cell_macro]`. Export it from the
 * macro cell's module so that expanding cells get the added fields' static types.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { proteinMacro, t } from "@cell/sdk";
 * export const addFieldMacro = proteinMacro("add_field_macro", {
 *   fields: { extra_field: t.u64() },
 *   doc: "Adds extra_field: u64",
 * });
 * assert.ok(addFieldMacro.output.protein.fields[0]?.name === "extra_field");
 * ```
 */
export function proteinMacro<const F extends Fields>(
  name: string,
  options: ProteinMacroOptions<F>,
): ProteinMacro<F> {
  checkName(name);
  if (options?.fields === null || typeof options?.fields !== "object") {
    throw new TypeError(`Macro '${name}' declares no fields: pass { fields: { name: t.*() } }`);
  }
  const output = fieldsInput(options.fields as TProperties);
  const version = options.version ?? "1";
  const run = options.expand ?? (() => structuredClone(output.protein.fields));
  return {
    kind: "protein-macro",
    name,
    fields: options.fields,
    output,
    hash: sha256({ name, kind: "protein", version, output }),
    ...(options.doc === undefined ? {} : { doc: options.doc }),
    run,
  };
}

/**
 * Declares a macro from a protein's IR to source files in another language: the seed's
 * `generate_pydantic_model`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codegenMacro } from "@cell/sdk";
 * const listFields = codegenMacro("list_fields", (input) => ({
 *   files: [{ path: `${input.name}.txt`, contents: input.fields.map((f) => f.name).join("\n") }],
 * }));
 * assert.ok(listFields.kind === "codegen-macro");
 * ```
 */
export function codegenMacro(
  name: string,
  generate: (input: ProteinSchema, ir: CellSchema) => { files: MacroFile[] },
  options: CodegenMacroOptions = {},
): CodegenMacro {
  checkName(name);
  if (typeof generate !== "function") {
    throw new TypeError(`Macro '${name}' needs a function (input, ir) => { files }`);
  }
  return {
    kind: "codegen-macro",
    name,
    hash: sha256({ name, kind: "codegen", version: options.version ?? "1" }),
    ...(options.doc === undefined ? {} : { doc: options.doc }),
    run: generate,
  };
}

function parseInput(json: string): ProteinInput {
  let input: ProteinInput;
  try {
    input = JSON.parse(json);
  } catch (e) {
    throw new CellError("INVALID_ARGUMENT", `Macro input is not JSON: ${(e as Error).message}`);
  }
  if (typeof input?.protein?.name !== "string" || !Array.isArray(input.protein.fields)) {
    throw new CellError(
      "INVALID_ARGUMENT",
      "Macro input must be {protein: <protein IR>, proteins: [...]}",
    );
  }
  input.proteins = Array.isArray(input.proteins) ? input.proteins : [];
  return input;
}

function runMacro(macro: Macro, input: ProteinInput): Record<string, unknown> {
  if (macro.kind === "codegen-macro") {
    const all = [input.protein, ...input.proteins];
    const ir: CellSchema = {
      cell: "macro-input",
      protocol: PROTOCOL_VERSION,
      hash: schemaHash([], all),
      methods: [],
      proteins: all,
    };
    return { hash: macro.hash, files: macro.run(input.protein, ir).files };
  }
  const added = macro.run(input.protein, input.proteins);
  const existing = new Set(input.protein.fields.map((f) => f.name));
  const clashes = added.filter((f) => existing.has(f.name)).map((f) => f.name);
  if (clashes.length > 0) {
    throw new CellError(
      "INVALID_ARGUMENT",
      `Macro '${macro.name}' adds ${clashes.map((c) => `'${c}'`).join(", ")}, which ` +
        `protein '${input.protein.name}' already has: rename or remove the field`,
      { details: { macro: macro.name, fields: clashes } },
    );
  }
  const expanded = { ...input.protein, fields: [...input.protein.fields, ...added] };
  return { hash: macro.hash, protein: JSON.stringify(expanded) };
}

function macroHandlers(macros: Macro[]) {
  const byName = new Map<string, Macro>();
  for (const m of macros) {
    if (m?.kind !== "protein-macro" && m?.kind !== "codegen-macro") {
      throw new TypeError("macroService() takes macros made by proteinMacro() or codegenMacro()");
    }
    if (byName.has(m.name)) throw new TypeError(`Two macros are named '${m.name}'`);
    byName.set(m.name, m);
  }
  return {
    macros: () => ({
      macros: macros.map((m) => ({
        name: m.name,
        kind: m.kind === "protein-macro" ? "protein" as const : "codegen" as const,
        hash: m.hash,
        ...(m.doc === undefined ? {} : { doc: m.doc }),
        ...(m.kind === "protein-macro" ? { output: JSON.stringify(m.output) } : {}),
      })),
    }),
    expand: ({ macro, input }: { macro: string; input: string }) => {
      const found = byName.get(macro);
      if (!found) {
        throw new CellError(
          "NOT_FOUND",
          `No macro '${macro}' here; this cell serves ${
            [...byName.keys()].map((n) => `'${n}'`).join(", ") || "no macros"
          }`,
          { details: { macro, macros: [...byName.keys()] } },
        );
      }
      // The wire shapes are checked by the server against ExpandResponse.
      return runMacro(found, parseInput(input)) as { hash: string };
    },
  };
}

/**
 * The implementation of {@linkcode MacroService} serving `macros`: pass it to `serve`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, MacroService, macroService, proteinMacro, serve, t } from "@cell/sdk";
 * const addFieldMacro = proteinMacro("add_field_macro", { fields: { extra_field: t.u64() } });
 * const server = await serve("doc-macros", macroService(addFieldMacro), {
 *   socket: false,
 *   handleSignals: false,
 * });
 * await using client = await connect<MacroService>("doc-macros");
 * const { macros } = await client.macros({});
 * assert.ok(macros[0]?.name === "add_field_macro");
 * await server.shutdown();
 * ```
 */
export function macroService(...macros: Macro[]): Implementation<MacroService["methods"]> {
  return MacroService.implement(macroHandlers(macros));
}

/**
 * `implementation` with the `macros` and `expand` methods of {@linkcode MacroService} added, for
 * a cell that serves macros beside its own methods.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { method, protein, proteinMacro, service, t, withMacros } from "@cell/sdk";
 * const Ping = protein("Ping", {});
 * const Svc = service({ ping: method(Ping, Ping) });
 * const m = proteinMacro("add_id", { fields: { id: t.u64() } });
 * const impl = withMacros(Svc.implement({ ping: () => ({}) }), m);
 * assert.ok(Object.keys(impl.definition.methods).join() === "ping,macros,expand");
 * ```
 */
export function withMacros(implementation: Implementation, ...macros: Macro[]): Implementation {
  const own = implementation.definition.methods as Record<string, unknown>;
  for (const name of Object.keys(MacroService.methods)) {
    if (name in own) {
      throw new TypeError(`The service already has a method '${name}': serve macros separately`);
    }
  }
  const merged = service({ ...implementation.definition.methods, ...MacroService.methods }, {
    ...(implementation.definition.doc === undefined ? {} : { doc: implementation.definition.doc }),
  });
  return merged.implement({ ...implementation.handlers, ...macroHandlers(macros) } as never);
}

/** The proteins of {@linkcode ProteinMacro} outputs merged into an input protein's type. */
export type Expanded<P extends TProperties, F extends Fields> = Protein<P & SchemasOf<F>>;
