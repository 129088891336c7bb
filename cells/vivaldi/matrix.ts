/**
 * Parsing of RTT matrices: tab- or space-separated square matrices where entry (i, j) is the
 * RTT from host i to host j.
 *
 * @module
 */

/**
 * A symmetric RTT matrix; `NaN` marks a missing measurement.
 */
export interface RttMatrix {
  /** Number of hosts. */
  readonly size: number;
  /** `rtt[i][j]` = `rtt[j][i]`; `NaN` where unknown, including the diagonal. */
  readonly rtt: readonly (readonly number[])[];
}

/**
 * Parses a square RTT matrix. Asymmetric pairs are averaged; zero, negative and missing entries
 * are treated as unknown, and a pair known in one direction only takes that value.
 *
 * @throws {SyntaxError} On a row of the wrong length or a non-numeric entry, naming the line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRttMatrix } from "@cell/vivaldi";
 * const m = parseRttMatrix("0\t10\t0\n12\t0\t5\n0\t5\t0\n");
 * assert.ok(m.rtt[0]![1] === 11);
 * assert.ok(Number.isNaN(m.rtt[0]![2]!));
 * ```
 */
export function parseRttMatrix(text: string): RttMatrix {
  const rows = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "");
  const n = rows.length;
  if (n < 2) throw new SyntaxError(`RTT matrix needs at least 2 rows, got ${n}`);
  const raw = rows.map((line, i) => {
    const cells = line.split(/[\t ,]+/);
    if (cells.length !== n) {
      throw new SyntaxError(
        `RTT matrix row ${
          i + 1
        } has ${cells.length} entries, expected ${n}: the matrix must be square`,
      );
    }
    return cells.map((cell, j) => {
      const v = Number(cell);
      if (cell === "" || Number.isNaN(v)) {
        throw new SyntaxError(
          `RTT matrix row ${i + 1}, column ${j + 1}: "${cell}" is not a number`,
        );
      }
      return v;
    });
  });
  const ok = (v: number) => Number.isFinite(v) && v > 0;
  const rtt = raw.map((row, i) =>
    row.map((v, j) => {
      if (i === j) return NaN;
      const w = raw[j]![i]!;
      if (ok(v) && ok(w)) return (v + w) / 2;
      if (ok(v)) return v;
      if (ok(w)) return w;
      return NaN;
    })
  );
  return { size: n, rtt };
}

/**
 * The square sub-matrix over `hosts` (indices into `m`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRttMatrix, subMatrix } from "@cell/vivaldi";
 * const m = parseRttMatrix("0 1 2\n1 0 3\n2 3 0");
 * assert.ok(subMatrix(m, [1, 2]).rtt[0]![1] === 3);
 * ```
 */
export function subMatrix(m: RttMatrix, hosts: readonly number[]): RttMatrix {
  for (const h of hosts) {
    if (!Number.isInteger(h) || h < 0 || h >= m.size) {
      throw new RangeError(`Host index ${h} is outside the matrix of ${m.size} hosts`);
    }
  }
  return { size: hosts.length, rtt: hosts.map((i) => hosts.map((j) => m.rtt[i]![j]!)) };
}
