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
 * import assert from "node:assert/strict";
 * import { cellHome } from "@cell/sdk";
 * assert.ok(cellHome().length > 0);
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
 * import assert from "node:assert/strict";
 * import { socketPath } from "@cell/sdk";
 * assert.ok(socketPath("my-service", "/srv/cell") === "/srv/cell/run/my-service.sock");
 * ```
 */
export function socketPath(name: string, home: string = cellHome()): string {
  return join(runDir(home), `${name}.sock`);
}

const INSTANCE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Checks an instance id (`CELL_INSTANCE_ID`): 1 to 64 of `A-Z a-z 0-9 _ . -`, so that it is
 * safe in a file name. Throws a `TypeError` that says what to change otherwise.
 *
 * @example
 * ```ts
 * import { checkInstanceId } from "@cell/sdk";
 * checkInstanceId("web-1");
 * ```
 */
export function checkInstanceId(instanceId: string): void {
  if (typeof instanceId !== "string" || !INSTANCE_ID.test(instanceId) || /^\.+$/.test(instanceId)) {
    throw new TypeError(
      `Invalid instance id ${JSON.stringify(instanceId)}: use 1 to 64 letters, digits, '_', '.' ` +
        "or '-' (set CELL_INSTANCE_ID accordingly)",
    );
  }
}

/**
 * The socket one instance of a cell serves on when several run on a host:
 * `<home>/run/<name>@<instanceId>.sock`, `home` defaulting to {@linkcode cellHome}.
 * `serve()` uses it when `CELL_INSTANCE_ID` is set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { instanceSocketPath } from "@cell/sdk";
 * const path = instanceSocketPath("my-service", "2", "/srv/cell");
 * assert.ok(path === "/srv/cell/run/my-service@2.sock");
 * ```
 */
export function instanceSocketPath(
  name: string,
  instanceId: string,
  home: string = cellHome(),
): string {
  checkInstanceId(instanceId);
  return join(runDir(home), `${name}@${instanceId}.sock`);
}

/** Creates `path` and its parents with mode 0700 (and tightens it if it exists). */
export async function ensurePrivateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  await Deno.chmod(path, 0o700);
}
