// The schema IR of macro inputs and outputs, their hashes, and the expansion cache.
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { TProperties } from "@sinclair/typebox";
import { type Protein, protein } from "./protein.ts";
import type { FieldSchema, ProteinSchema } from "./schema.ts";
import { schemaOf } from "./schema.ts";
import { method, service } from "./service.ts";
import { cellHome, ensurePrivateDir } from "./home.ts";

/** A protein's IR followed by every protein it refers to, as a macro receives it. */
export interface ProteinInput {
  protein: ProteinSchema;
  proteins: ProteinSchema[];
}

/** The IR of `p` and of the proteins it refers to, without docs read from TSDoc. */
export function proteinInput(p: Protein<TProperties>): ProteinInput {
  const schema = schemaOf("macro-input", service({ m: method(p, p) }));
  const [first, ...rest] = schema.proteins;
  return { protein: first!, proteins: rest };
}

/** The IR of a field map, as a macro declares its output. */
export function fieldsInput(fields: TProperties): ProteinInput {
  // The name is never shown: only the fields (and the proteins they refer to) are used.
  return proteinInput(protein("MacroOutput", fields));
}

/** `sha256:<hex>` of `value` as JSON. */
export function sha256(value: unknown): string {
  return `sha256:${createHash("sha256").update(JSON.stringify(value)).digest("hex")}`;
}

/** A field's wire-relevant part: its docs do not change what a macro produces. */
export function fieldShape({ name, type, optional }: FieldSchema): string {
  return JSON.stringify({ name, type, optional });
}

/** What the expansion cache holds for one key. */
export interface CacheEntry {
  cell: string;
  macro: string;
  hash: string;
  protein?: ProteinSchema;
  files?: { path: string; contents: string }[];
}

function cacheFile(key: string, home?: string): string {
  return join(home ?? cellHome(), "cache", "macros", `${key.replace("sha256:", "")}.json`);
}

/** The cached expansion under `key`, if any; an unreadable entry counts as missing. */
export async function readCache(key: string, home?: string): Promise<CacheEntry | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(cacheFile(key, home))) as CacheEntry;
  } catch {
    return undefined;
  }
}

/** Stores `entry` under `key`, atomically so that a concurrent reader never sees half of it. */
export async function writeCache(key: string, entry: CacheEntry, home?: string): Promise<string> {
  const path = cacheFile(key, home);
  await ensurePrivateDir(join(path, ".."));
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temp, JSON.stringify(entry));
  await Deno.rename(temp, path);
  return path;
}
