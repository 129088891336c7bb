/**
 * Reads the TSDoc comments of proteins, fields, services and methods from the modules that
 * declared them, so that `cell.schema` carries the docs users wrote where they wrote them.
 *
 * TypeScript's own parser does the reading (a hand-written comment scanner would misread
 * strings, nested objects and decorators); it is loaded on first use only, so cells that are
 * never introspected never pay for it.
 *
 * @module
 */
import type { CellSchema } from "./schema.ts";
import { sourcesOf } from "./schema.ts";

/** Docs found in source files, by declared name. */
export interface DocIndex {
  /** Protein docs by protein name, with field docs by field name. */
  proteins: Map<string, { doc?: string; fields: Map<string, string> }>;
  /** Method docs by method name. */
  methods: Map<string, string>;
  /** Service docs, keyed by the sorted method names of the `service({...})` call. */
  services: Map<string, string>;
}

type Ts = typeof import("typescript");
type Node = import("typescript").Node;

function docOf(ts: Ts, node: Node): string | undefined {
  const parts = ts.getJSDocCommentsAndTags(node)
    .filter((d) => ts.isJSDoc(d))
    .map((d) => ts.getTextOfJSDocComment((d as import("typescript").JSDoc).comment) ?? "")
    .filter((text) => text.trim() !== "");
  return parts.length ? parts.join("\n").trim() : undefined;
}

function calleeName(ts: Ts, call: import("typescript").CallExpression): string | undefined {
  const e = call.expression;
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  return undefined;
}

/** Where the docs of a `protein(...)`/`service(...)` call sit: on `const X = ...` when it is one. */
function declarationOf(ts: Ts, call: Node): Node {
  return ts.isVariableDeclaration(call.parent) ? call.parent : call;
}

/** Parses `text` (a module's source) and indexes the docs it declares. */
export async function indexDocs(
  text: string,
  fileName = "module.ts",
  into?: DocIndex,
): Promise<DocIndex> {
  // TypeScript is CommonJS: its API is the default export.
  const ts = (await import("typescript")).default as Ts;
  const index: DocIndex = into ?? { proteins: new Map(), methods: new Map(), services: new Map() };
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const visit = (node: Node): void => {
    if (ts.isCallExpression(node)) {
      const callee = calleeName(ts, node);
      const [first, second] = node.arguments;
      if (callee === "protein" && first && ts.isStringLiteralLike(first)) {
        const fields = new Map<string, string>();
        if (second && ts.isObjectLiteralExpression(second)) {
          for (const prop of second.properties) {
            const doc = docOf(ts, prop);
            if (doc && prop.name && (ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name))) {
              fields.set(prop.name.text, doc);
            }
          }
        }
        const doc = docOf(ts, declarationOf(ts, node));
        index.proteins.set(first.text, doc === undefined ? { fields } : { doc, fields });
      } else if (callee === "service" && first && ts.isObjectLiteralExpression(first)) {
        const names: string[] = [];
        for (const prop of first.properties) {
          if (!prop.name || !(ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name))) {
            continue;
          }
          names.push(prop.name.text);
          const doc = docOf(ts, prop);
          if (doc) index.methods.set(prop.name.text, doc);
        }
        const doc = docOf(ts, declarationOf(ts, node));
        if (doc) index.services.set(names.sort().join(","), doc);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return index;
}

const CACHE = new WeakMap<CellSchema, Promise<CellSchema>>();

/**
 * `schema` with docs filled in from the TSDoc of the modules that declared it; docs given
 * explicitly (`doc:` options) win. Sources that cannot be read (no permission, remote) are
 * skipped: the schema is still complete, only without those docs. Cached per schema.
 */
export function withDocs(schema: CellSchema): Promise<CellSchema> {
  let cached = CACHE.get(schema);
  if (!cached) {
    cached = fillDocs(schema, sourcesOf(schema));
    CACHE.set(schema, cached);
  }
  return cached;
}

async function fillDocs(schema: CellSchema, sources: string[]): Promise<CellSchema> {
  const index: DocIndex = { proteins: new Map(), methods: new Map(), services: new Map() };
  for (const source of sources) {
    if (!source.startsWith("file:")) continue;
    try {
      const text = await Deno.readTextFile(new URL(source));
      await indexDocs(text, source, index);
    } catch {
      // Docs are best effort: a cell without read access to its source still serves its schema.
    }
  }
  const key = schema.methods.map((m) => m.name).sort().join(",");
  const serviceDoc = schema.doc ?? index.services.get(key);
  return {
    ...schema,
    ...(serviceDoc === undefined ? {} : { doc: serviceDoc }),
    methods: schema.methods.map((m) => {
      const doc = m.doc ?? index.methods.get(m.name);
      return doc === undefined ? m : { ...m, doc };
    }),
    proteins: schema.proteins.map((p) => {
      const found = index.proteins.get(p.name);
      const doc = p.doc ?? found?.doc;
      return {
        ...p,
        ...(doc === undefined ? {} : { doc }),
        fields: p.fields.map((f) => {
          const fieldDoc = f.doc ?? found?.fields.get(f.name);
          return fieldDoc === undefined ? f : { ...f, doc: fieldDoc };
        }),
      };
    }),
  };
}
