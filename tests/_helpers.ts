// Helpers for the multi-process tests.
import nodeAssert from "node:assert/strict";

export const assert: (condition: unknown, message?: string) => asserts condition = nodeAssert.ok;
export const assertEquals: <T>(actual: unknown, expected: T, message?: string) => void =
  nodeAssert.deepStrictEqual;

/** A child process that prints a line when it is ready. */
export interface Child extends AsyncDisposable {
  process: Deno.ChildProcess;
  /** Everything it wrote to stdout after its first line. */
  output(): Promise<string>;
}

/** Runs `deno run -A <module> ...args` with `env`, and waits for its first line of output. */
export async function spawnReady(
  module: string,
  args: string[],
  env: Record<string, string>,
): Promise<Child> {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(module, import.meta.url).pathname, ...args],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = setTimeout(() => process.kill("SIGKILL"), 30_000);
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) {
      clearTimeout(deadline);
      await process.status;
      throw new Error(`${module} exited before it was ready`);
    }
    text += value;
  }
  clearTimeout(deadline);
  const rest = (async () => {
    let out = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) out += r.value;
    return out;
  })();
  return {
    process,
    output: () => rest,
    async [Symbol.asyncDispose]() {
      try {
        process.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await process.status;
      await rest;
    },
  };
}

/** Waits until `condition()` holds, polling every 10 ms. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error("Condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
