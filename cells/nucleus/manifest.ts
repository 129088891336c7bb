/**
 * The cell manifest: what a cell declares about itself (its name, the cells it calls, the
 * permissions it needs), read from `cell.json` next to its main module or from the `"cell"`
 * key of the nearest `deno.json`. See `cells/nucleus/README.md`.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { CellError } from "@cell/sdk";

/** The cell's declared needs, from `cell.json` next to the module or `"cell"` in `deno.json`. */
export interface CellManifest {
  /** The cell's name; a deployment under another name is refused. */
  name?: string;
  /** Cells it calls: grants their Unix sockets in `$CELL_HOME/run`. */
  calls?: string[];
  /** What the instances may do beyond what every cell gets. */
  permissions?: ManifestPermissions;
}

/** Declared permissions; paths may start with `$CELL_HOME`, `$CELL_DATA` or `$MODULE_DIR`. */
export interface ManifestPermissions {
  /** `true` for any host, or a list of `host[:port]`; also shares the host network. */
  net?: boolean | string[];
  /** Extra readable paths. */
  read?: string[];
  /** Extra writable paths. */
  write?: string[];
  /** Extra environment variables it may read (only those the nucleus sets exist). */
  env?: string[];
  /** `false` withdraws FFI (the shared-memory ring's library then cannot load). */
  ffi?: boolean;
  /** Deno `--allow-sys` names, or `true`. */
  sys?: boolean | string[];
}

const MANIFEST_KEYS = new Set(["name", "calls", "permissions"]);
const PERMISSION_KEYS = new Set(["net", "read", "write", "env", "ffi", "sys"]);

/** True when `module` is a URL rather than a file path. */
export function isUrlModule(module: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(module) && !module.startsWith("file:");
}

/**
 * Resolves a deploy request's module to an absolute path (URLs stay as they are) and checks
 * that it exists: `NOT_FOUND` otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveModule } from "./manifest.ts";
 * const path = await resolveModule(new URL("./testdata/crash.ts", import.meta.url).pathname);
 * assert.ok(path.endsWith("crash.ts"));
 * ```
 */
export async function resolveModule(module: string): Promise<string> {
  if (typeof module !== "string" || module === "") {
    throw new CellError(
      "INVALID_ARGUMENT",
      "Module is empty: pass the path of the cell's main module",
    );
  }
  if (isUrlModule(module)) return module;
  const path = module.startsWith("file:") ? new URL(module).pathname : resolve(module);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new CellError(
      "NOT_FOUND",
      `Module '${path}' does not exist: pass the path of the cell's main module ` +
        "(absolute, or relative to the nucleus's working directory)",
    );
  }
  if (!info.isFile) {
    throw new CellError("INVALID_ARGUMENT", `Module '${path}' is not a file: pass the main module`);
  }
  return path;
}

/**
 * Reads the manifest of the module at `module`: `cell.json` in its directory, else the `"cell"`
 * key of the nearest `deno.json`; `{}` when there is none. A malformed one is `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadManifest } from "./manifest.ts";
 * const manifest = await loadManifest(new URL("./testdata/probe/probe.ts", import.meta.url).pathname);
 * assert.ok(manifest.name === "probe");
 * ```
 */
export async function loadManifest(module: string): Promise<CellManifest> {
  if (isUrlModule(module)) return {};
  const dir = dirname(module);
  const own = await readJson(join(dir, "cell.json"));
  if (own !== undefined) return checkManifest(own, join(dir, "cell.json"));
  for (let d = dir;; d = dirname(d)) {
    const config = await readJson(join(d, "deno.json"));
    if (config !== undefined) {
      const cell = (config as Record<string, unknown>)?.cell;
      return cell === undefined ? {} : checkManifest(cell, `'cell' in ${join(d, "deno.json")}`);
    }
    if (dirname(d) === d) return {};
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CellError("INVALID_ARGUMENT", `${path} is not valid JSON: fix it and deploy again`, {
      cause: e,
    });
  }
}

function checkManifest(value: unknown, where: string): CellManifest {
  const bad = (what: string) =>
    new CellError(
      "INVALID_ARGUMENT",
      `Cell manifest ${where}: ${what} (see cells/nucleus/README.md)`,
    );
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad("expected an object");
  }
  const m = value as Record<string, unknown>;
  for (const key of Object.keys(m)) if (!MANIFEST_KEYS.has(key)) throw bad(`unknown key '${key}'`);
  if (m.name !== undefined && typeof m.name !== "string") throw bad("'name' must be a string");
  if (m.calls !== undefined && !isStrings(m.calls)) throw bad("'calls' must be a list of names");
  const p = m.permissions;
  if (p !== undefined) {
    if (typeof p !== "object" || p === null || Array.isArray(p)) {
      throw bad("'permissions' must be an object");
    }
    const perms = p as Record<string, unknown>;
    for (const key of Object.keys(perms)) {
      if (!PERMISSION_KEYS.has(key)) throw bad(`unknown permission '${key}'`);
    }
    for (const key of ["read", "write", "env"]) {
      if (perms[key] !== undefined && !isStrings(perms[key])) {
        throw bad(`'permissions.${key}' must be a list of strings`);
      }
    }
    for (const key of ["net", "sys"]) {
      const v = perms[key];
      if (v !== undefined && typeof v !== "boolean" && !isStrings(v)) {
        throw bad(`'permissions.${key}' must be true, false or a list of strings`);
      }
    }
    if (perms.ffi !== undefined && typeof perms.ffi !== "boolean") {
      throw bad("'permissions.ffi' must be true or false");
    }
  }
  return m as CellManifest;
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string" && !v.includes(","));
}
