/**
 * The CLI's version, as `cell --version` prints it.
 *
 * @module
 */

/**
 * The version of `@cell/cli` (kept equal to `cli/deno.json` by a test).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VERSION } from "@cell/cli";
 * assert.ok(/^\d+\.\d+\.\d+/.test(VERSION));
 * ```
 */
export const VERSION = "0.1.0";
