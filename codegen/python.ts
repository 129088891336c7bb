/**
 * The Python generator: a package `<cell in snake_case>/` with a `TypedDict` per protein, a
 * blocking client and an asyncio client with a typed method per method (keyword arguments, one
 * per request field), and the runtime (`_runtime.py`: MessagePack frames over Unix sockets,
 * discovery, errors). Needs Python 3.11+ (or `typing_extensions`) and `pip install msgpack`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pythonGenerator } from "@cell/codegen";
 * import { method, protein, schemaOf, service, t } from "@cell/sdk";
 *
 * const Req = protein("Request", { name: t.string() });
 * const Res = protein("Response", { greeting: t.string() });
 * const schema = schemaOf("my-service", service({ greet: method(Req, Res) }));
 * const files = pythonGenerator.generate(schema, { version: "0.1.0" });
 * const init = files.find((f) => f.path === "my_service/__init__.py");
 * assert.ok(init?.contents.includes("class MyServiceClient(CellClient):"));
 * assert.ok(init?.contents.includes("    def greet(\n        self,\n        *,\n        name: str,\n"));
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
import { pascalCase, quote, safeName } from "./_names.ts";
import { PY_RUNTIME } from "./_runtime.ts";

/** Python's keywords, and names that would shadow what generated code relies on. */
export const PY_KEYWORDS: ReadonlySet<string> = new Set(
  ("False None True and as assert async await break class continue def del elif else except " +
    "finally for from global if import in is lambda nonlocal not or pass raise return try while " +
    "with yield type match case print self cls")
    .split(" "),
);

/** Module-level names of the generated `__init__.py` besides the proteins and clients. */
const MODULE_NAMES = (
  "Any Dict List Literal Mapping Optional Tuple TypedDict NotRequired cast sys CELL " +
  "SCHEMA_HASH METHODS AsyncCellClient CellClient CellError CODES ERRORS MalformedFrameError " +
  "CancelledError UnknownError InvalidArgumentError DeadlineExceededError NotFoundError " +
  "AlreadyExistsError PermissionDeniedError ResourceExhaustedError FailedPreconditionError " +
  "AbortedError OutOfRangeError UnimplementedError InternalError UnavailableError DataLossError " +
  "UnauthenticatedError annotations"
).split(" ");

/** Names a method body uses, which parameters must not shadow. */
const BODY_NAMES = [
  "self",
  "request",
  "timeout",
  "metadata",
  "cast",
  "Any",
  "Dict",
  "List",
  "Literal",
  "Mapping",
  "Optional",
];

/** Members of the runtime's client classes that generated methods must not replace. */
const CLIENT_MEMBERS = ["call", "close", "connect", "server_schema_hash"];

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function docstring(doc: string | undefined, indent: string): string[] {
  const lines = docLines(doc).map((l) => l.replaceAll("\\", "\\\\").replaceAll('"""', '\\"\\"\\"'));
  if (lines.length === 0) return [];
  if (lines.length === 1) return [`${indent}"""${lines[0]}"""`];
  return [
    `${indent}"""${lines[0]}`,
    ...lines.slice(1).map((l) => `${indent}${l}`.trimEnd()),
    `${indent}"""`,
  ];
}

/** `head items... tail` on one line when it fits in 100 columns, else one item per line. */
function wrapped(head: string, items: string[], tail: string, indent: string): string[] {
  const line = `${head}${items.join(", ")}${tail}`;
  if (line.length <= 100) return [line];
  return [head, ...items.map((item) => `${indent}    ${item},`), `${indent}${tail}`];
}

interface Param {
  wire: string;
  python: string;
  type: string;
  optional: boolean;
}

class PythonEmitter {
  readonly #index: SchemaIndex;
  readonly #typeNames = new Map<string, string>();
  readonly #taken = new Set(MODULE_NAMES);

  constructor(readonly schema: CellSchema) {
    this.#index = new SchemaIndex(schema);
    for (const p of schema.proteins) {
      this.#typeNames.set(p.name, safeName(p.name, PY_KEYWORDS, "pascal", this.#taken));
    }
  }

  type(t: FieldType, quoteRefs = false): string {
    switch (t.kind) {
      case "scalar":
        return t.scalar === "bool"
          ? "bool"
          : t.scalar === "string"
          ? "str"
          : t.scalar.startsWith("f")
          ? "float"
          : "int";
      case "bytes":
        return "bytes";
      case "any":
        return "Any";
      case "list":
        return `List[${this.type(t.items, quoteRefs)}]`;
      case "map":
        return `Dict[str, ${this.type(t.values, quoteRefs)}]`;
      case "optional":
        return `NotRequired[${this.type(t.inner, quoteRefs)}]`;
      case "enum":
        return t.values.length === 0 ? "str" : `Literal[${t.values.map(quote).join(", ")}]`;
      case "ref": {
        const name = this.#typeNames.get(t.name)!;
        return quoteRefs ? quote(name) : name;
      }
    }
  }

  protein(p: ProteinSchema): string[] {
    const name = this.#typeNames.get(p.name)!;
    const doc = p.doc ?? `The protein \`\`${p.name}\`\`.`;
    const plain = p.fields.every((f) => IDENTIFIER.test(f.name) && !PY_KEYWORDS.has(f.name));
    if (!plain) {
      // Field names that are not Python identifiers need TypedDict's functional syntax.
      const fields = p.fields.map((f) =>
        `    ${quote(f.name)}: ${this.type(this.#index.fieldType(p, f), true)},`
      );
      return [
        `${name} = TypedDict(${quote(name)}, {`,
        ...fields,
        "})",
        ...docstring(doc, ""),
        "",
        "",
      ];
    }
    const fields = p.fields.flatMap((f) => [
      `    ${f.name}: ${this.type(this.#index.fieldType(p, f))}`,
      ...docstring(f.doc, "    "),
    ]);
    return [
      `class ${name}(TypedDict):`,
      ...docstring(doc, "    "),
      ...(fields.length === 0 ? ["    pass"] : ["", ...fields]),
      "",
      "",
    ];
  }

  params(protein: ProteinSchema): Param[] {
    const taken = new Set<string>();
    const keywords = new Set([...PY_KEYWORDS, ...BODY_NAMES]);
    return protein.fields.map((f) => {
      const t = this.#index.fieldType(protein, f);
      const optional = t.kind === "optional";
      const type = this.type(optional ? t.inner : t);
      return { wire: f.name, python: safeName(f.name, keywords, "snake", taken), type, optional };
    });
  }

  methods(async: boolean): { lines: string[]; table: string[]; names: string[] } {
    const taken = new Set<string>();
    const reserved = new Set([...PY_KEYWORDS, ...CLIENT_MEMBERS]);
    const lines: string[] = [];
    const table: string[] = [];
    const names: string[] = [];
    for (const m of this.schema.methods as MethodSchema[]) {
      const name = safeName(m.name, reserved, "snake", taken);
      names.push(name);
      const req = this.#index.protein(m.request);
      const res = this.#typeNames.get(m.response)!;
      const params = this.params(req);
      const signature = [
        ...params.filter((p) => !p.optional).map((p) => `${p.python}: ${p.type}`),
        ...params.filter((p) => p.optional).map((p) => `${p.python}: Optional[${p.type}] = None`),
        "timeout: Optional[float] = None",
        "metadata: Optional[Mapping[str, str]] = None",
      ];
      const head = `    ${async ? "async " : ""}def ${name}(self, *, ${
        signature.join(", ")
      }) -> ${res}:`;
      const doc = [
        ...docLines(m.doc),
        ...(m.doc ? [""] : []),
        `Calls \`\`${m.name}\`\`${
          m.idempotent ? " (idempotent: retried when the cell is unavailable)" : ""
        }; ` +
        "``timeout`` is in seconds.",
      ].join("\n");
      const required = params.filter((p) => !p.optional).map((p) =>
        `${quote(p.wire)}: ${p.python}`
      );
      lines.push(
        head.length <= 100
          ? head
          : `    ${async ? "async " : ""}def ${name}(\n        self,\n        *,\n` +
            signature.map((s) => `        ${s},\n`).join("") + `    ) -> ${res}:`,
        ...docstring(doc, "        "),
        ...wrapped("        request: Dict[str, Any] = {", required, "}", "        "),
        ...params.filter((p) => p.optional).flatMap((p) => [
          `        if ${p.python} is not None:`,
          `            request[${quote(p.wire)}] = ${p.python}`,
        ]),
        `        response = ${async ? "await " : ""}self.call(`,
        `            ${quote(m.name)}, request, timeout=timeout, metadata=metadata, ` +
          `idempotent=${m.idempotent ? "True" : "False"}`,
        "        )",
        `        return cast(${res}, response)`,
        "",
      );
      const fields = params.map((p) => `${quote(p.wire)}: ${quote(p.python)}`);
      table.push(...wrapped(`    ${quote(m.name)}: (${quote(name)}, {`, fields, "}),", "    "));
    }
    return { lines, table, names };
  }

  render(version: string, packageName: string): string {
    const base = pascalCase(this.schema.cell);
    const sync = safeName(`${base}Client`, PY_KEYWORDS, "pascal", this.#taken);
    const aio = safeName(`Async${base}Client`, PY_KEYWORDS, "pascal", this.#taken);
    const syncMethods = this.methods(false);
    const errors = MODULE_NAMES.filter((n) => n.endsWith("Error"));
    return [
      generatedHeader(version, "#"),
      `"""Client of the Cell service \`\`${this.schema.cell}\`\` (schema ${this.schema.hash}).`,
      "",
      ...docLines(this.schema.doc).map((l) => l.replaceAll('"""', "'''")),
      ...(this.schema.doc ? [""] : []),
      "Needs ``pip install msgpack``. The client finds the cell through ``$CELL_HOME`` (default",
      "``~/.cell``): the nucleus, else ``$CELL_HOME/run/<cell>.sock``; ``socket=`` overrides it::",
      "",
      `    from ${packageName} import ${sync}`,
      `    client = ${sync}()`,
      "    client.connect()",
      ...(syncMethods.names[0] ? [`    result = client.${syncMethods.names[0]}(...)`] : []),
      "",
      `Errors are \`\`CellError\`\` subclasses, one per code (\`\`NotFoundError\`\`, ...). \`\`${aio}\`\``,
      "is the asyncio client.",
      '"""',
      "",
      "from __future__ import annotations",
      "",
      "import sys",
      "from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple, TypedDict, cast",
      "",
      "from ._runtime import (",
      "    AsyncCellClient,",
      "    CellClient,",
      "    CellError,",
      "    CODES,",
      "    ERRORS,",
      "    MalformedFrameError,",
      ...errors.filter((e) => e !== "CellError" && e !== "MalformedFrameError").map((e) =>
        `    ${e},`
      ),
      ")",
      "",
      "if sys.version_info >= (3, 11):",
      "    from typing import NotRequired",
      "else:  # pragma: no cover",
      "    from typing_extensions import NotRequired",
      "",
      `CELL = ${quote(this.schema.cell)}`,
      '"""The name of the cell this client calls."""',
      `SCHEMA_HASH = ${quote(this.schema.hash)}`,
      '"""The hash of the schema this client was generated from (see ``strict_schema``)."""',
      "",
      "",
      ...this.#index.proteinsInDependencyOrder().flatMap((p) => this.protein(p)),
      "METHODS: Dict[str, Tuple[str, Dict[str, str]]] = {",
      ...syncMethods.table,
      "}",
      '"""Each method\'s IR name: its Python name, and its request fields\' Python parameter names."""',
      "",
      "",
      ...this.client(sync, "CellClient", syncMethods.lines, false),
      "",
      "",
      ...this.client(aio, "AsyncCellClient", this.methods(true).lines, true),
      "",
      "__all__ = [",
      ...[
        "CELL",
        "SCHEMA_HASH",
        "METHODS",
        sync,
        aio,
        "CellError",
        "CODES",
        "ERRORS",
        ...errors.filter((e) => e !== "CellError"),
        ...this.#typeNames.values(),
      ].map((n) => `    ${quote(n)},`),
      "]",
      "",
    ].join("\n");
  }

  client(name: string, base: string, methods: string[], async: boolean): string[] {
    const doc = this.schema.doc ??
      `A${async ? "n asyncio" : " blocking"} client of the cell \`\`${this.schema.cell}\`\`.`;
    return [
      `class ${name}(${base}):`,
      ...docstring(doc, "    "),
      "",
      "    def __init__(",
      "        self,",
      "        socket: Optional[str] = None,",
      "        *,",
      "        home: Optional[str] = None,",
      "        timeout: Optional[float] = None,",
      "        strict_schema: bool = False,",
      "        peer: Optional[str] = None,",
      "    ) -> None:",
      "        super().__init__(",
      "            CELL,",
      "            SCHEMA_HASH,",
      "            socket,",
      "            home=home,",
      "            timeout=timeout,",
      "            strict_schema=strict_schema,",
      "            peer=peer,",
      "        )",
      "",
      ...methods,
    ].map((l) => l.trimEnd());
  }
}

/** Generates a Python package, `<cell in snake_case>/`. */
export const pythonGenerator: Generator = {
  language: "python",
  extension: "py",
  generate(schema: CellSchema, options: GenerateOptions): GeneratedFile[] {
    const name = safeName(options.packageName ?? schema.cell, PY_KEYWORDS, "snake");
    const header = generatedHeader(options.version, "#");
    return [
      {
        path: `${name}/__init__.py`,
        contents: new PythonEmitter(schema).render(options.version, name),
      },
      { path: `${name}/_runtime.py`, contents: `${header}\n${PY_RUNTIME}` },
      { path: `${name}/py.typed`, contents: `${header}\n` },
    ];
  },
};
