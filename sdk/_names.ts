// Names and identifiers shared by the server and the client.

/** This implementation, as it introduces itself in HELLO. */
export const AGENT = "cell-ts/0.1.0";

const CELL_NAME = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;

/** Throws a `TypeError` unless `name` is a valid cell name. */
export function checkCellName(name: string): void {
  if (typeof name !== "string" || !CELL_NAME.test(name)) {
    throw new TypeError(
      `Cell name ${JSON.stringify(name)} is invalid: use 1-63 lowercase letters, digits, ` +
        "'.', '_' or '-', starting and ending with a letter or digit (for example 'my-service')",
    );
  }
}
