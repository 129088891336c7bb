// Names and identifiers shared by the server and the client.

/** This implementation, as it introduces itself in HELLO. */
export const AGENT = "cell-ts/0.1.0";

const CELL_NAME = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;

/**
 * Throws a `TypeError` unless `name` is a valid cell name: 1-63 lowercase letters, digits, `.`,
 * `_` or `-`, starting and ending with a letter or digit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCellName } from "@cell/sdk";
 * checkCellName("my-service");
 * let refused = false;
 * try {
 *   checkCellName("My Service");
 * } catch {
 *   refused = true;
 * }
 * assert.ok(refused);
 * ```
 */
export function checkCellName(name: string): void {
  if (typeof name !== "string" || !CELL_NAME.test(name)) {
    throw new TypeError(
      `Cell name ${JSON.stringify(name)} is invalid: use 1-63 lowercase letters, digits, ` +
        "'.', '_' or '-', starting and ending with a letter or digit (for example 'my-service')",
    );
  }
}

/**
 * Names no method may have: `then` would make clients look like promises to `await`; the others
 * are what tools probe objects for.
 */
export const RESERVED_METHOD_NAMES: ReadonlySet<string> = new Set([
  "then",
  "catch",
  "finally",
  "toJSON",
  "constructor",
  "inspect",
]);

/** Name of the built-in method that returns the cell's schema. */
export const SCHEMA_METHOD = "cell.schema";
