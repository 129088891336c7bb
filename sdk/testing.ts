/**
 * Helpers for testing cells: a private `CELL_HOME` per test.
 *
 * @module
 */

/** A temporary `CELL_HOME`, removed (with its sockets) on dispose. */
export interface TempCellHome extends AsyncDisposable {
  /** The directory. */
  readonly path: string;
  /** Restores the previous `CELL_HOME` and removes the directory. */
  cleanup(): Promise<void>;
}

/**
 * Points `CELL_HOME` at a fresh temporary directory until disposed, so that tests never touch
 * `~/.cell` nor each other's sockets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tempCellHome } from "@cell/sdk/testing";
 * {
 *   await using home = await tempCellHome();
 *   assert.ok(Deno.env.get("CELL_HOME") === home.path);
 * }
 * ```
 */
export async function tempCellHome(): Promise<TempCellHome> {
  const previous = Deno.env.get("CELL_HOME");
  // Short prefix under /tmp: socket paths must fit in 107 bytes.
  const path = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-" });
  Deno.env.set("CELL_HOME", path);
  const cleanup = async () => {
    if (previous === undefined) Deno.env.delete("CELL_HOME");
    else Deno.env.set("CELL_HOME", previous);
    await Deno.remove(path, { recursive: true }).catch(() => {});
  };
  return { path, cleanup, [Symbol.asyncDispose]: cleanup };
}
