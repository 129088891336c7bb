// The declarations shared by serving and expanding macros: macro values and the wire service.
import type { TArray, TLiteral, TObject, TOptional, TString, TUnion } from "@sinclair/typebox";
import type { Fields, Protein } from "./protein.ts";
import { protein, t } from "./protein.ts";
import type { CellSchema, FieldSchema, ProteinSchema } from "./schema.ts";
import { type Method, method, type Service, service } from "./service.ts";
import type { ProteinInput } from "./_macro_ir.ts";

/** A file a codegen macro writes, relative to the output directory. */
export interface MacroFile {
  /** Relative path with `/` separators, for example `user.py`. */
  path: string;
  /** The file's text. */
  contents: string;
}

/** A macro that adds the fields `F` to a protein. Made by `proteinMacro`. */
export interface ProteinMacro<F extends Fields = Fields> {
  /** Marks the object as a protein macro. */
  readonly kind: "protein-macro";
  /** The name it is served and expanded under. */
  readonly name: string;
  /** The declared fields. */
  readonly fields: F;
  /** The IR of the declared fields. */
  readonly output: ProteinInput;
  /** `sha256:<hex>` of the declaration: name, kind, version and output IR. */
  readonly hash: string;
  /** Documentation. */
  readonly doc?: string;
  /** Runs the macro (on the serving cell). */
  run(input: ProteinSchema, proteins: ProteinSchema[]): FieldSchema[];
}

/** A macro from a protein's IR to source files. Made by `codegenMacro`. */
export interface CodegenMacro {
  /** Marks the object as a codegen macro. */
  readonly kind: "codegen-macro";
  /** The name it is served and expanded under. */
  readonly name: string;
  /** `sha256:<hex>` of the declaration: name, kind and version. */
  readonly hash: string;
  /** Documentation. */
  readonly doc?: string;
  /** Runs the macro (on the serving cell). */
  run(input: ProteinSchema, ir: CellSchema): { files: MacroFile[] };
}

/** Either kind of macro. */
export type Macro = ProteinMacro | CodegenMacro;

/** No arguments. */
export const MacrosRequest: Protein<Record<never, never>> = protein("MacrosRequest", {});

type MacroInfoFields = {
  name: TString;
  kind: TUnion<TLiteral<"protein" | "codegen">[]>;
  hash: TString;
  doc: TOptional<TString>;
  output: TOptional<TString>;
};
type FileFields = { path: TString; contents: TString };

/** One macro a cell serves. */
export const MacroInfo: Protein<MacroInfoFields> = protein("MacroInfo", {
  name: t.string(),
  kind: t.enum("protein", "codegen"),
  /** The declaration hash, part of every cache key. */
  hash: t.string(),
  doc: t.optional(t.string()),
  /** For protein macros: the JSON IR of the declared fields (`{protein, proteins}`). */
  output: t.optional(t.string()),
});

/** The macros a cell serves. */
export const MacroList: Protein<{ macros: TArray<TObject<MacroInfoFields>> }> = protein(
  "MacroList",
  { macros: t.list(MacroInfo) },
);

/** What to expand. */
export const ExpandRequest: Protein<{ macro: TString; input: TString }> = protein("ExpandRequest", {
  /** The macro's name. */
  macro: t.string(),
  /** JSON of the input protein's IR and the proteins it refers to: `{protein, proteins}`. */
  input: t.string(),
});

/** A generated file. */
export const ExpandedFile: Protein<FileFields> = protein("ExpandedFile", {
  path: t.string(),
  contents: t.string(),
});

/** The expansion. */
export const ExpandResponse: Protein<{
  hash: TString;
  protein: TOptional<TString>;
  files: TOptional<TArray<TObject<FileFields>>>;
}> = protein("ExpandResponse", {
  /** The macro's declaration hash. */
  hash: t.string(),
  /** For protein macros: JSON of the expanded protein's IR. */
  protein: t.optional(t.string()),
  /** For codegen macros: the files. */
  files: t.optional(t.list(ExpandedFile)),
});

/** The service a macro cell serves; build its implementation with `macroService`. */
export const MacroService: Service<{
  macros: Method<typeof MacrosRequest, typeof MacroList>;
  expand: Method<typeof ExpandRequest, typeof ExpandResponse>;
}> = service({
  /** Lists the macros this cell serves. */
  macros: method(MacrosRequest, MacroList, { idempotent: true }),
  /** Expands a macro over a protein's IR. */
  expand: method(ExpandRequest, ExpandResponse, { idempotent: true }),
});
/** The type of {@linkcode MacroService}. */
export type MacroService = typeof MacroService;
