// What every command shares: the run's context, exit codes, JSON output and error reporting.
import { InvalidArgumentError } from "commander";
import {
  CellError,
  cellHome,
  checkCellName,
  type Client,
  connect,
  type ConnectOptions,
  type Service,
} from "@cell/sdk";
import type { CliIo } from "./io.ts";

/** The command did what it was asked. */
export const EXIT_OK = 0;
/** The command ran and failed: the call returned an error, the cell is unreachable, ... */
export const EXIT_FAILURE = 1;
/** The command line is wrong: unknown option, bad argument, invalid JSON payload. */
export const EXIT_USAGE = 2;

/** A mistake in the command line: reported as `error: message` and exit code 2. */
export class UsageError extends Error {
  /** Lines printed after the message: where the mistake is, an example that works. */
  readonly hints: readonly string[];

  constructor(message: string, hints: readonly string[] = []) {
    super(message);
    this.name = "UsageError";
    this.hints = hints;
  }
}

/** State of one `run()`: where to write, the home chosen with `--home`, the exit code. */
export interface Context {
  readonly io: CliIo;
  /** `--home DIR`, which overrides `$CELL_HOME`. */
  home?: string;
  exitCode: number;
}

/** The Cell home of this run: `--home`, else `$CELL_HOME`, else `~/.cell`. */
export function homeOf(ctx: Context): string {
  return ctx.home ?? cellHome();
}

/**
 * Runs an action, turning what it throws into output and an exit code: usage mistakes exit 2,
 * everything else 1. With `json`, errors go to stdout as `{"error":{...}}`.
 */
export async function act(
  ctx: Context,
  options: ReportOptions,
  action: () => Promise<number>,
): Promise<void> {
  try {
    ctx.exitCode = await action();
  } catch (e) {
    ctx.exitCode = report(ctx, e, options);
  }
}

/** What an error report needs to know about the command. */
export interface ReportOptions {
  /** `--json` was given. */
  json?: boolean | undefined;
  /** The cell the command talks to. */
  cell?: string;
  /** `--socket`, if given. */
  socket?: string | undefined;
}

function report(ctx: Context, error: unknown, options: ReportOptions): number {
  const io = ctx.io;
  const json = options.json === true;
  if (error instanceof UsageError) {
    if (json) {
      io.stdout(
        compactJson({
          error: { code: "INVALID_ARGUMENT", message: error.message, hints: error.hints },
        }),
      );
    } else {
      io.stderr(`error: ${error.message}\n${error.hints.map((h) => `${h}\n`).join("")}`);
    }
    return EXIT_USAGE;
  }
  // A TypeError or RangeError is a bad argument found locally (a flag's value, a file's content).
  const cellError = !(error instanceof CellError) &&
      (error instanceof TypeError || error instanceof RangeError)
    ? new CellError("INVALID_ARGUMENT", error.message, { cause: error })
    : CellError.from(error);
  if (json) {
    const { code, message, details } = cellError;
    io.stdout(
      compactJson({ error: { code, message, ...(details === undefined ? {} : { details }) } }),
    );
    return EXIT_FAILURE;
  }
  // Local failures (a corrupt file, a permission) have no code worth showing: only calls do.
  io.stderr(`error: ${error instanceof CellError ? cellError : cellError.message}\n`);
  if (cellError.details !== undefined) io.stderr(`details: ${prettyJson(cellError.details)}`);
  if (cellError.code === "UNAVAILABLE") io.stderr(unavailableHint(ctx, options));
  return EXIT_FAILURE;
}

function unavailableHint(ctx: Context, { cell = "<cell>", socket }: ReportOptions): string {
  if (socket !== undefined) {
    return `hint: check that '${cell}' is running and serves on ${socket}\n`;
  }
  let home: string;
  try {
    home = homeOf(ctx);
  } catch {
    home = "unset";
  }
  return `hint: a cell serves on $CELL_HOME/run/<cell>.sock, and the Cell home here is ${home}. ` +
    `Start '${cell}' (its program calls serve("${cell}")) with the same CELL_HOME, or pass ` +
    "--socket PATH\n";
}

/** JSON.stringify's replacer for wire values: bytes as `{"$bytes": base64}`, bigints as strings. */
function wireReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: value.toBase64() };
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** A wire value as indented JSON, with a final newline. */
export function prettyJson(value: unknown): string {
  return `${JSON.stringify(value, wireReplacer, 2) ?? "null"}\n`;
}

/** A wire value as one line of JSON, with a final newline. */
export function compactJson(value: unknown): string {
  return `${JSON.stringify(value, wireReplacer) ?? "null"}\n`;
}

/** Commander argument parser for a positive integer option such as `--timeout 500`. */
export function positiveInteger(what: string): (text: string) => number {
  return (text) => {
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new InvalidArgumentError(`${what} must be a positive integer, like 5000.`);
    }
    return n;
  };
}

/** Flags shared by every command that talks to a cell. */
export interface ConnectFlags {
  socket?: string;
  timeout?: number;
}

/**
 * Connects to `cell` as `--socket`, `--home` and `--timeout` say. An invalid cell name is a
 * usage error.
 */
export async function connectTo(
  ctx: Context,
  cell: string,
  flags: ConnectFlags,
): Promise<Client<Service>> {
  try {
    checkCellName(cell);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return await connect(cell, connectOptions(ctx, flags));
}

function connectOptions(ctx: Context, flags: ConnectFlags): ConnectOptions {
  // Without --socket nor --home, the SDK finds the cell: in this process, then under $CELL_HOME.
  return {
    ...(flags.socket === undefined ? {} : { address: flags.socket, transport: "uds" as const }),
    ...(ctx.home === undefined ? {} : { home: ctx.home }),
    ...(flags.timeout === undefined
      ? {}
      : { timeoutMs: flags.timeout, connectTimeoutMs: Math.min(flags.timeout, 5000) }),
    peer: "cell-cli",
  };
}
