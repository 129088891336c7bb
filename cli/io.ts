/**
 * Where the CLI reads and writes: {@linkcode CliIo}. The real one, {@linkcode denoIo}, is the
 * process's stdin, stdout and stderr; tests pass their own to capture what a command prints.
 *
 * @module
 */

/** The streams a command uses. Text is written as given: commands add their own newlines. */
export interface CliIo {
  /** Writes results: what a script would read. */
  stdout(text: string): void;
  /** Writes errors, hints and progress. */
  stderr(text: string): void;
  /**
   * Reads all of standard input, or returns `undefined` when there is none to read (stdin is a
   * terminal). `cell call` reads its payload from here when none is given.
   * @default {none: `undefined`}
   */
  readStdin?(): Promise<string | undefined>;
}

/**
 * The process's own streams: stdout, stderr, and stdin unless it is a terminal.
 *
 * @example
 * ```ts
 * import { denoIo } from "@cell/cli";
 * const io = denoIo();
 * io.stderr(""); // writes nothing, but proves the stream is there
 * ```
 */
export function denoIo(): CliIo {
  const encoder = new TextEncoder();
  const write = (file: { writeSync(p: Uint8Array): number }, text: string) => {
    let bytes = encoder.encode(text);
    try {
      while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
    } catch (e) {
      // `cell schema x | head` closes the pipe early: that is the reader's choice, not an error.
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
    }
  };
  return {
    stdout: (text) => write(Deno.stdout, text),
    stderr: (text) => write(Deno.stderr, text),
    async readStdin() {
      if (Deno.stdin.isTerminal()) return undefined;
      return await new Response(Deno.stdin.readable).text();
    },
  };
}
