/**
 * Builds `libcell_ring.so` from the C sources with the system C compiler, once per version of
 * the sources: the library is cached under `$CELL_RING_CACHE`, else
 * `${XDG_CACHE_HOME:-$HOME/.cache}/cell/ring/`, named after a hash of the sources and flags, so
 * a changed source is rebuilt and the package itself may live on a read-only file system.
 * `CELL_RING_LIB` names a prebuilt library instead (a sandbox binds it read-only).
 *
 * Run as a program (`deno task build:ffi`) it builds and prints the library's path.
 *
 * @module
 */

/** Compiler flags of the library; part of the cache key. */
const FLAGS = ["-O2", "-fPIC", "-shared", "-std=c11", "-Wall", "-Wextra", "-Werror"];

/** Names of the library's source files. */
export type SourceName = "cell_ring.c" | "cell_ring.h";

const SOURCES: Record<SourceName, URL> = {
  "cell_ring.c": new URL("./src/cell_ring.c", import.meta.url),
  "cell_ring.h": new URL("./include/cell_ring.h", import.meta.url),
};

async function readSource(url: URL): Promise<string> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`Cannot read '${url}': ${response.status}`);
  return await response.text();
}

/** The C sources of the library, by file name. */
export async function librarySources(): Promise<Record<SourceName, string>> {
  return {
    "cell_ring.c": await readSource(SOURCES["cell_ring.c"]),
    "cell_ring.h": await readSource(SOURCES["cell_ring.h"]),
  };
}

/**
 * `Deno.env.get(name)`, or undefined when this process may not read it (a sandbox).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readEnv } from "@cell/ring";
 * assert.ok(readEnv("CELL_NO_SUCH_VARIABLE") === undefined);
 * ```
 */
export function readEnv(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name);
}

function cacheDir(): string {
  const explicit = readEnv("CELL_RING_CACHE");
  if (explicit) return explicit;
  const xdg = readEnv("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/cell/ring`;
  const home = readEnv("HOME");
  if (!home) throw new Error("Neither CELL_RING_CACHE nor HOME is set: set CELL_RING_CACHE");
  return `${home}/.cache/cell/ring`;
}

function compiler(): string {
  return readEnv("CC") || "cc";
}

/**
 * Where the library lives (or will, once built): `$CELL_RING_LIB` when set, else its place in
 * the cache. Give this path to a sandbox to bind it read-only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libraryPath } from "@cell/ring";
 * assert.ok((await libraryPath()).endsWith(".so"));
 * ```
 */
export async function libraryPath(): Promise<string> {
  const prebuilt = readEnv("CELL_RING_LIB");
  if (prebuilt) return prebuilt;
  const sources = await librarySources();
  const key = new TextEncoder().encode(
    [FLAGS.join(" "), sources["cell_ring.h"], sources["cell_ring.c"]].join("\0"),
  );
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", key));
  const hash = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${cacheDir()}/libcell_ring-${hash}.so`;
}

/**
 * Compiles the C sources `files` (written to a temporary directory with the library's header)
 * into `output` with the system C compiler and `flags`. Throws a clear error when there is no
 * compiler or it fails.
 */
export async function compile(
  output: string,
  flags: string[],
  extra: Record<string, string> = {},
): Promise<void> {
  const sources = await librarySources();
  const dir = await Deno.makeTempDir({ prefix: "cell-ring-build-" });
  try {
    const files = { ...sources, ...extra };
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    const inputs = Object.keys(files).filter((n) => n.endsWith(".c")).map((n) => `${dir}/${n}`);
    const cc = compiler();
    let result: Deno.CommandOutput;
    try {
      result = await new Deno.Command(cc, {
        args: [...flags, `-I${dir}`, "-o", output, ...inputs],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(
          `No C compiler found (tried '${cc}'): install gcc or clang, set CC, ` +
            "or set CELL_RING_LIB to a prebuilt libcell_ring.so",
          { cause: e },
        );
      }
      throw e;
    }
    if (!result.success) {
      throw new Error(
        `Compiling the ring library with '${cc}' failed: ` +
          new TextDecoder().decode(result.stderr).trim(),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The path of a built library: returns {@linkcode libraryPath}, compiling the library first
 * when it is not there yet (a changed C source has another path, so a stale build is never
 * used). Throws when there is no C compiler.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ensureLibrary } from "@cell/ring";
 * const path = await ensureLibrary();
 * assert.ok(Deno.statSync(path).isFile);
 * ```
 */
export async function ensureLibrary(): Promise<string> {
  const path = await libraryPath();
  try {
    await Deno.stat(path);
    return path;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) || readEnv("CELL_RING_LIB")) throw e;
  }
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  // Build next to the target and rename: concurrent builders never see half a library.
  const partial = `${path}.${Deno.pid}.tmp`;
  try {
    await compile(partial, FLAGS);
    await Deno.rename(partial, path);
  } finally {
    await Deno.remove(partial).catch(() => {});
  }
  return path;
}

if (import.meta.main) console.log(await ensureLibrary());
