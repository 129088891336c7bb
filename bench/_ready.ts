/**
 * Waiting for a benchmark server process to say it is ready.
 *
 * @module
 */

/**
 * Reads `server`'s stdout until it has printed `ready`; throws naming `what` if it exits first.
 * The rest of its stdout stays unread (the caller cancels it when done).
 */
export async function waitReady(server: Deno.ChildProcess, what: string): Promise<void> {
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${what} exited before it was ready`);
    text += value;
  }
  reader.releaseLock();
}
