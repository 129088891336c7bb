/**
 * Where Cell keeps its files: `$CELL_HOME` (default `~/.cell`), with sockets in `run/`.
 *
 * @module
 */
import { join } from "node:path";

/**
 * The Cell home directory: `$CELL_HOME`, or `~/.cell`.
 *
 * @example
 * ```ts
 * import { cellHome } from "@cell/sdk";
 * console.assert(cellHome().length > 0);
 * ```
 */
export function cellHome(): string {
  const fromEnv = Deno.env.get("CELL_HOME");
  if (fromEnv) return fromEnv;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (!home) {
    throw new Error("Neither CELL_HOME nor HOME is set: set CELL_HOME to a writable directory");
  }
  return join(home, ".cell");
}

/** The directory of sockets, `<home>/run`; `home` defaults to {@linkcode cellHome}. */
export function runDir(home: string = cellHome()): string {
  return join(home, "run");
}

/**
 * The socket a cell named `name` serves on by default: `<home>/run/<name>.sock`, `home`
 * defaulting to {@linkcode cellHome}.
 *
 * @example
 * ```ts
 * import { socketPath } from "@cell/sdk";
 * console.assert(socketPath("my-service", "/srv/cell") === "/srv/cell/run/my-service.sock");
 * ```
 */
export function socketPath(name: string, home: string = cellHome()): string {
  return join(runDir(home), `${name}.sock`);
}

/** Creates `path` and its parents with mode 0700 (and tightens it if it exists). */
export async function ensurePrivateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  await Deno.chmod(path, 0o700);
}
