// Where a definition was written, so that its TSDoc can be read back for introspection.

const FRAME = /((?:file|https?):\/\/[^\s()]+?):\d+:\d+\)?$/;

/**
 * The module URL of the code that called the SDK function which calls `callerFile()`, if known.
 * Stack: [0] "Error", [1] callerFile, [2] the SDK function, [3] its caller.
 */
export function callerFile(): string | undefined {
  const line = new Error().stack?.split("\n")[3]?.trim();
  return line ? FRAME.exec(line)?.[1] : undefined;
}
