// Shared by the generator tests: fixtures from testdata/ and lookups in generated file lists.
import assert from "node:assert/strict";
import type { CellSchema } from "@cell/sdk";
import { parseSchema } from "./_ir.ts";

/** The schema IR in `testdata/<name>`, parsed as a generator would receive it. */
export async function fixture(name: string): Promise<CellSchema> {
  const text = await Deno.readTextFile(new URL(`./testdata/${name}`, import.meta.url));
  return parseSchema(JSON.parse(text));
}

/** The contents of the generated file at `path`; fails the test naming what there is instead. */
export function file(files: { path: string; contents: string }[], path: string): string {
  const found = files.find((f) => f.path === path);
  assert.ok(found, `no ${path} among ${files.map((f) => f.path).join(", ")}`);
  return found.contents;
}
