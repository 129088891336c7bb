/**
 * The one error type of Cell: {@linkcode CellError}, with a closed set of codes borrowed from gRPC.
 *
 * @module
 */

/**
 * The closed set of error codes a call can fail with. They are gRPC's status codes, with the same
 * numbers on the wire, so that clients in every language map them the same way.
 */
export type Code =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

/**
 * Wire numbers of each {@linkcode Code}, as in gRPC's `status.proto`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CODE_NUMBERS } from "@cell/sdk";
 * assert.ok(CODE_NUMBERS.NOT_FOUND === 5);
 * ```
 */
export const CODE_NUMBERS: Readonly<Record<Code, number>> = Object.freeze({
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
});

const CODES_BY_NUMBER: ReadonlyMap<number, Code> = new Map(
  Object.entries(CODE_NUMBERS).map(([code, n]) => [n, code as Code]),
);

/**
 * The {@linkcode Code} for a wire number; numbers outside the set map to `"UNKNOWN"`, as gRPC does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codeFromNumber } from "@cell/sdk";
 * assert.ok(codeFromNumber(14) === "UNAVAILABLE");
 * assert.ok(codeFromNumber(99) === "UNKNOWN");
 * ```
 */
export function codeFromNumber(n: number): Code {
  return CODES_BY_NUMBER.get(n) ?? "UNKNOWN";
}

/** Options of {@linkcode CellError}. */
export interface CellErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
  /**
   * Structured, serializable data about the failure (for example the field errors of an
   * `INVALID_ARGUMENT`). Sent over the wire.
   */
  details?: unknown;
}

/**
 * Every failure of a call, local or remote. `code` is one of the closed {@linkcode Code} set;
 * `message` says what went wrong and what to do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CellError } from "@cell/sdk";
 *
 * const err = new CellError("NOT_FOUND", "No user with id '42': create it first");
 * assert.ok(err.code === "NOT_FOUND");
 * assert.ok(CellError.from(new Error("boom")).code === "UNKNOWN");
 * ```
 */
export class CellError extends Error {
  /** The error's code. */
  readonly code: Code;
  /** Structured data about the failure, if any. */
  readonly details?: unknown;

  /** Creates an error with a code and a message. */
  constructor(code: Code, message: string, options: CellErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CellError";
    this.code = code;
    if (options.details !== undefined) this.details = options.details;
  }

  /** The code's wire number. */
  get codeNumber(): number {
    return CODE_NUMBERS[this.code];
  }

  /**
   * Turns anything thrown into a `CellError`: a `CellError` is returned as is, an `AbortSignal`
   * reason of type `TimeoutError` becomes `DEADLINE_EXCEEDED`, an `AbortError` becomes
   * `CANCELLED`, anything else `UNKNOWN` with the original as `cause`.
   */
  static from(reason: unknown): CellError {
    if (reason instanceof CellError) return reason;
    if (reason instanceof DOMException) {
      if (reason.name === "TimeoutError") {
        return new CellError("DEADLINE_EXCEEDED", reason.message, { cause: reason });
      }
      if (reason.name === "AbortError") {
        return new CellError("CANCELLED", reason.message, { cause: reason });
      }
    }
    const message = reason instanceof Error ? reason.message : String(reason);
    return new CellError("UNKNOWN", message, { cause: reason });
  }

  /** The error as `CODE: message`, the way it prints in logs and the CLI. */
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}
