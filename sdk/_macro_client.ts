// Expanding macros served by another cell: `expand` (protein macros) and `expandFiles` (codegen
// macros), through the expansion cache.
import { dirname, isAbsolute, join, normalize } from "node:path";
import type { TProperties } from "@sinclair/typebox";
import { CellError } from "./errors.ts";
import { type Fields, type Protein, protein, type SchemasOf } from "./protein.ts";
import type { FieldSchema, ProteinSchema } from "./schema.ts";
import { connect } from "./client.ts";
import {
  type CacheEntry,
  fieldShape,
  proteinInput,
  readCache,
  sha256,
  writeCache,
} from "./_macro_ir.ts";
import type { CodegenMacro, MacroFile, MacroService, ProteinMacro } from "./_macro_wire.ts";

/** Options of {@linkcode expand}. */
export interface ExpandOptions {
  /**
   * The Cell home whose `run/` holds the macro cell's socket and whose `cache/macros/` holds
   * expansions, instead of `$CELL_HOME`.
   * @default {"$CELL_HOME, or ~/.cell"}
   */
  home?: string;
  /**
   * Milliseconds the macro cell has to answer.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Ask the macro cell even when the cache has the expansion (and refresh the cache).
   * @default {false}
   */
  refresh?: boolean;
}

/** Options of {@linkcode expandFiles}. */
export interface ExpandFilesOptions extends ExpandOptions {
  /** The directory to write the files into; created if missing. */
  output: string;
  /**
   * Overwrite files that exist.
   * @default {false}
   */
  force?: boolean;
}

async function fetchExpansion(
  cell: string,
  macro: { name: string; hash: string },
  input: unknown,
  options: ExpandOptions,
): Promise<CacheEntry> {
  let client;
  try {
    client = await connect<MacroService>(cell, {
      ...(options.home === undefined ? {} : { home: options.home }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  } catch (e) {
    const error = CellError.from(e);
    if (error.code !== "UNAVAILABLE") throw error;
    throw new CellError(
      "UNAVAILABLE",
      `Cannot expand macro '${macro.name}': cell '${cell}' is not running and the expansion is ` +
        `not cached; start it (for example 'cell deploy ${cell}') and try again`,
      { cause: error },
    );
  }
  try {
    const out = await client.expand({ macro: macro.name, input: JSON.stringify(input) });
    return {
      cell,
      macro: macro.name,
      hash: out.hash,
      ...(out.protein === undefined ? {} : { protein: JSON.parse(out.protein) }),
      ...(out.files === undefined ? {} : { files: out.files }),
    };
  } finally {
    await client.$close();
  }
}

function describeFields(fields: FieldSchema[]): string {
  return fields.map((f) => `${f.name}: ${JSON.stringify(f.type)}${f.optional ? "?" : ""}`)
    .join(", ") || "none";
}

/** Fails unless `expanded` is `input` plus the declared fields of `macro`. */
function checkExpansion(
  cell: string,
  macro: ProteinMacro,
  input: ProteinSchema,
  entry: CacheEntry,
): void {
  const expanded = entry.protein;
  if (!expanded || !Array.isArray(expanded.fields)) {
    throw new CellError(
      "FAILED_PRECONDITION",
      `Cell '${cell}' serves '${macro.name}' as a codegen macro: use expandFiles()`,
    );
  }
  const before = new Set(input.fields.map(fieldShape));
  const added = expanded.fields.filter((f) => !before.has(fieldShape(f)));
  const declared = macro.output.protein.fields;
  const want = new Set(declared.map(fieldShape));
  const got = new Set(added.map(fieldShape));
  const lost = input.fields.filter((f) =>
    !expanded.fields.some((g) => fieldShape(g) === fieldShape(f))
  );
  const unexpected = added.filter((f) => !want.has(fieldShape(f)));
  const missing = declared.filter((f) => !got.has(fieldShape(f)));
  if (lost.length > 0 || unexpected.length > 0 || missing.length > 0) {
    throw new CellError(
      "FAILED_PRECONDITION",
      `Cell '${cell}' expanded '${macro.name}' differently from its declaration: added ` +
        `${describeFields(added)}, declared ${describeFields(declared)}` +
        (lost.length > 0 ? `, dropped ${describeFields(lost)}` : "") +
        "; update the macro's module to the version the cell serves",
      {
        details: {
          macro: macro.name,
          unexpected: unexpected.map((f) => f.name),
          missing: missing.map((f) => f.name),
          dropped: lost.map((f) => f.name),
        },
      },
    );
  }
  if (entry.hash !== macro.hash) {
    throw new CellError(
      "FAILED_PRECONDITION",
      `Cell '${cell}' serves another version of macro '${macro.name}' (${entry.hash}, this ` +
        `module declares ${macro.hash}); update the macro's module to the version the cell serves`,
    );
  }
}

async function cachedOrFetched(
  cell: string,
  macro: { name: string; hash: string },
  input: unknown,
  options: ExpandOptions,
): Promise<{ key: string; entry: CacheEntry; cached: boolean }> {
  const key = sha256({ macro: macro.name, declaration: macro.hash, input });
  const cached = options.refresh ? undefined : await readCache(key, options.home);
  if (cached && cached.hash === macro.hash) return { key, entry: cached, cached: true };
  return { key, entry: await fetchExpansion(cell, macro, input, options), cached: false };
}

/**
 * Expands the protein macro `macro`, served by the cell `cell`, over `input`: the seed's
 * `#[expand(cell_a, add_field_macro)]`. Returns a protein of the same name with the macro's
 * fields added, typed from the macro's declaration; the fields come from the macro cell and are
 * checked against that declaration (`FAILED_PRECONDITION` naming the fields when they differ).
 * The expansion is cached by the hash of the macro's declaration and of `input`, so it works
 * without the macro cell once done. Fails with `UNAVAILABLE` when the cell is not running and
 * nothing is cached, `NOT_FOUND` when it serves no such macro, `INVALID_ARGUMENT` when the
 * macro adds a field `input` already has.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expand, type Infer, macroService, protein, proteinMacro, serve, t } from "@cell/sdk";
 * import { tempCellHome } from "@cell/sdk/testing";
 * await using _home = await tempCellHome();
 *
 * const addFieldMacro = proteinMacro("add_field_macro", { fields: { extra_field: t.u64() } });
 * const server = await serve("doc-cell-a", macroService(addFieldMacro), {
 *   socket: false,
 *   handleSignals: false,
 * });
 * const MyStruct = await expand(
 *   "doc-cell-a",
 *   addFieldMacro,
 *   protein("MyStruct", { name: t.string() }),
 * );
 * const value: Infer<typeof MyStruct> = { name: "a", extra_field: 1 };
 * assert.ok(MyStruct.check(value));
 * await server.shutdown();
 * ```
 */
export async function expand<P extends TProperties, F extends Fields>(
  cell: string,
  macro: ProteinMacro<F>,
  input: Protein<P>,
  options: ExpandOptions = {},
): Promise<Protein<P & SchemasOf<F>>> {
  if (macro?.kind !== "protein-macro") {
    throw new TypeError(
      "expand() takes a macro made by proteinMacro(); for codegen use expandFiles()",
    );
  }
  const ir = proteinInput(input as unknown as Protein);
  const clashes = Object.keys(macro.fields).filter((f) => f in input.schema.properties);
  if (clashes.length > 0) {
    throw new CellError(
      "INVALID_ARGUMENT",
      `Macro '${macro.name}' adds ${clashes.map((c) => `'${c}'`).join(", ")}, which protein ` +
        `'${input.name}' already has: rename or remove the field`,
      { details: { macro: macro.name, fields: clashes } },
    );
  }
  const { key, entry, cached } = await cachedOrFetched(cell, macro, ir, options);
  checkExpansion(cell, macro, ir.protein, entry);
  if (!cached) await writeCache(key, entry, options.home);
  const fields = { ...input.schema.properties, ...macro.fields };
  return protein(input.name, fields, input.doc === undefined ? {} : { doc: input.doc }) as never;
}

function checkPath(cell: string, macro: string, path: string): string {
  const normal = normalize(path);
  if (typeof path !== "string" || isAbsolute(path) || normal.startsWith("..") || normal === ".") {
    throw new CellError(
      "FAILED_PRECONDITION",
      `Macro '${macro}' of cell '${cell}' returned the path ${JSON.stringify(path)}, outside ` +
        "the output directory",
    );
  }
  return normal;
}

/**
 * Expands the codegen macro `macro`, served by the cell `cell`, over `input`'s IR and writes the
 * files into `options.output`; returns their paths. Refuses (`ALREADY_EXISTS`) to overwrite a
 * file unless `force`. Cached like {@linkcode expand}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codegenMacro, expandFiles, macroService, protein, serve, t } from "@cell/sdk";
 * import { tempCellHome } from "@cell/sdk/testing";
 * await using _home = await tempCellHome();
 *
 * const names = codegenMacro("field_names", (input) => ({
 *   files: [{ path: "names.txt", contents: input.fields.map((f) => f.name).join(",") }],
 * }));
 * const server = await serve("doc-codegen", macroService(names), {
 *   socket: false,
 *   handleSignals: false,
 * });
 * const output = await Deno.makeTempDir();
 * const User = protein("User", { id: t.u64(), name: t.string() });
 * await expandFiles("doc-codegen", names, User, { output });
 * assert.ok(await Deno.readTextFile(`${output}/names.txt`) === "id,name");
 * await Deno.remove(output, { recursive: true });
 * await server.shutdown();
 * ```
 */
export async function expandFiles(
  cell: string,
  macro: CodegenMacro,
  input: Protein,
  options: ExpandFilesOptions,
): Promise<string[]> {
  if (macro?.kind !== "codegen-macro") {
    throw new TypeError(
      "expandFiles() takes a macro made by codegenMacro(); for proteins use expand()",
    );
  }
  if (typeof options?.output !== "string") {
    throw new TypeError("expandFiles() needs { output: <directory> }");
  }
  const { key, entry, cached } = await cachedOrFetched(cell, macro, proteinInput(input), options);
  if (!Array.isArray(entry.files)) {
    throw new CellError(
      "FAILED_PRECONDITION",
      `Cell '${cell}' serves '${macro.name}' as a protein macro: use expand()`,
    );
  }
  const files: MacroFile[] = entry.files.map((f) => ({
    path: join(options.output, checkPath(cell, macro.name, f.path)),
    contents: f.contents,
  }));
  if (!options.force) {
    for (const { path } of files) {
      const exists = await Deno.lstat(path).then(() => true, () => false);
      if (exists) {
        throw new CellError(
          "ALREADY_EXISTS",
          `'${path}' exists: remove it or pass { force: true } to overwrite it`,
        );
      }
    }
  }
  if (!cached) await writeCache(key, entry, options.home);
  for (const { path, contents } of files) {
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, contents);
  }
  return files.map((f) => f.path);
}
