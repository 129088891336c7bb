/**
 * Pydantic models from the schema IR, and the seed's `generate_pydantic_model` codegen macro
 * that serves them: a protein becomes `<protein in snake_case>.py` with a `BaseModel` per
 * protein (the input and every protein it refers to). Integers keep their wire ranges
 * (`Field(ge=0, le=2**64-1)` for `u64`), lists, maps, enums, optional fields and nested
 * proteins map to `List`, `Dict[str, ...]`, `Literal`, `Optional[...] = None` and the nested
 * model. Needs `pip install 'pydantic>=2'`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pydanticModel } from "@cell/codegen/pydantic";
 * import { method, protein, schemaOf, service, t } from "@cell/sdk";
 *
 * const User = protein("User", { id: t.u64(), name: t.string() });
 * const ir = schemaOf("users", service({ get: method(User, User) }));
 * const [file] = pydanticModel(ir.proteins[0]!, ir);
 * assert.ok(file?.path === "user.py");
 * assert.ok(file?.contents.includes("    id: int = Field(ge=0, le=2**64-1)"));
 * assert.ok(file?.contents.includes("    name: str"));
 * ```
 *
 * @module
 */
import { type CellSchema, type CodegenMacro, codegenMacro, type ProteinSchema } from "@cell/sdk";
import { type GeneratedFile, generatedHeader } from "./plugin.ts";
import { docLines, type FieldType, refsOf, SchemaIndex } from "./_ir.ts";
import { quote, safeName, snakeCase } from "./_names.ts";

/** The version written in the generated header; part of the macro's declaration hash. */
const VERSION = "0.1.0";

/** Python keywords and `BaseModel` members a field must not be named (it gets an alias). */
const RESERVED: ReadonlySet<string> = new Set(
  ("False None True and as assert async await break class continue def del elif else except " +
    "finally for from global if import in is lambda nonlocal not or pass raise return try while " +
    "with yield copy dict json parse_obj parse_raw schema schema_json validate construct " +
    "from_orm fields update_forward_refs")
    .split(" "),
);

const INT_BOUNDS: Record<string, [string, string]> = {
  i8: ["-128", "127"],
  i16: ["-32768", "32767"],
  i32: ["-2**31", "2**31-1"],
  i64: ["-2**63", "2**63-1"],
  u8: ["0", "255"],
  u16: ["0", "65535"],
  u32: ["0", "2**32-1"],
  u64: ["0", "2**64-1"],
};

function intBounds(scalar: string): string {
  const [ge, le] = INT_BOUNDS[scalar]!;
  return `ge=${ge}, le=${le}`;
}

/** The annotation of `type`; integers inside containers carry their bounds with `Annotated`. */
function annotation(type: FieldType): string {
  switch (type.kind) {
    case "scalar":
      if (type.scalar in INT_BOUNDS) return `Annotated[int, Field(${intBounds(type.scalar)})]`;
      return type.scalar === "bool" ? "bool" : type.scalar === "string" ? "str" : "float";
    case "bytes":
      return "bytes";
    case "any":
      return "Any";
    case "list":
      return `List[${annotation(type.items)}]`;
    case "map":
      return `Dict[str, ${annotation(type.values)}]`;
    case "optional":
      return `Optional[${annotation(type.inner)}]`;
    case "enum":
      return `Literal[${type.values.map(quote).join(", ")}]`;
    case "ref":
      return type.name;
  }
}

function fieldLine(name: string, type: FieldType, alias: string | undefined): string {
  const optional = type.kind === "optional";
  const inner = type.kind === "optional" ? type.inner : type;
  const args = optional ? ["default=None"] : [];
  let text: string;
  // A top-level integer reads as the seed's `id: int = Field(ge=0, le=2**64-1)`.
  if (inner.kind === "scalar" && inner.scalar in INT_BOUNDS) {
    text = "int";
    args.push(intBounds(inner.scalar));
  } else {
    text = annotation(inner);
  }
  if (optional) text = `Optional[${text}]`;
  if (alias !== undefined) args.push(`alias=${quote(alias)}`);
  if (args.length > 0) text += ` = Field(${args.join(", ")})`;
  return `    ${name}: ${text}`;
}

function modelLines(p: ProteinSchema, index: SchemaIndex): string[] {
  const lines = [`class ${p.name}(BaseModel):`];
  const doc = docLines(p.doc).map((l) => l.replaceAll("\\", "\\\\").replaceAll('"""', '\\"""'));
  if (doc.length > 0) lines.push(`    """${doc.join("\n    ")}"""`);
  const taken = new Set<string>();
  const aliased = p.fields.some((f) => pythonName(f.name) !== f.name);
  if (aliased) lines.push("    model_config = ConfigDict(populate_by_name=True)");
  for (const f of p.fields) {
    const name = pythonName(f.name, taken);
    lines.push(fieldLine(name, index.fieldType(p, f), name === f.name ? undefined : f.name));
  }
  if (p.fields.length === 0 && doc.length === 0) lines.push("    pass");
  return lines;
}

function pythonName(name: string, taken?: Set<string>): string {
  const plain = /^[A-Za-z][A-Za-z0-9_]*$/.test(name) && !RESERVED.has(name) &&
    !name.startsWith("model_");
  if (plain) {
    taken?.add(name);
    return name;
  }
  return safeName(name.replace(/^model_/, "m_"), RESERVED, "snake", taken);
}

/**
 * The Pydantic models of `input` and of the proteins it refers to (found in `ir`), in one file
 * named after `input`. Pure; throws a `TypeError` on a dangling reference.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pydanticModel } from "@cell/codegen/pydantic";
 * import { method, protein, schemaOf, service, t } from "@cell/sdk";
 * const Tag = protein("Tag", { label: t.string() });
 * const Post = protein("Post", { tags: t.list(Tag), score: t.optional(t.u8()) });
 * const ir = schemaOf("posts", service({ get: method(Post, Post) }));
 * const text = pydanticModel(ir.proteins[0]!, ir)[0]!.contents;
 * assert.ok(text.indexOf("class Tag(") < text.indexOf("class Post("));
 * assert.ok(text.includes("score: Optional[int] = Field(default=None, ge=0, le=255)"));
 * ```
 */
export function pydanticModel(input: ProteinSchema, ir: CellSchema): GeneratedFile[] {
  const index = new SchemaIndex({ ...ir, proteins: [input, ...ir.proteins] });
  const needed = new Set<string>();
  const visit = (p: ProteinSchema) => {
    if (needed.has(p.name)) return;
    needed.add(p.name);
    for (const f of p.fields) {
      for (const name of refsOf(f.type)) visit(index.protein(name, `${p.name}.${f.name}`));
    }
  };
  visit(input);
  const models = index.proteinsInDependencyOrder().filter((p) => needed.has(p.name));
  const seen = new Set<string>();
  const unique = models.filter((p) => !seen.has(p.name) && seen.add(p.name));
  const lines = [
    generatedHeader(VERSION, "#"),
    "from __future__ import annotations",
    "",
    "from typing import Annotated, Any, Dict, List, Literal, Optional",
    "",
    "from pydantic import BaseModel, ConfigDict, Field",
    "",
  ];
  for (const p of unique) lines.push("", ...modelLines(p, index), "");
  lines.push("");
  for (const p of unique) lines.push(`${p.name}.model_rebuild()`);
  return [{ path: `${snakeCase(input.name)}.py`, contents: `${lines.join("\n")}\n` }];
}

/**
 * The seed's `generate_pydantic_model`: a codegen macro that writes {@linkcode pydanticModel}'s
 * file. Serve it with `macroService(generatePydanticModel)`; expand it with `expandFiles`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generatePydanticModel } from "@cell/codegen/pydantic";
 * assert.ok(generatePydanticModel.name === "generate_pydantic_model");
 * ```
 */
export const generatePydanticModel: CodegenMacro = codegenMacro(
  "generate_pydantic_model",
  (input, ir) => ({ files: pydanticModel(input, ir) }),
  { doc: "Writes a Pydantic v2 model of a protein", version: VERSION },
);
