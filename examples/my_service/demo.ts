/**
 * `deno task demo`: the seed's setup guide, run for real. In a temporary CELL_HOME it serves
 * `my-service` in one process, calls it from another, prints the greeting, stops the server with
 * SIGTERM (it drains and exits), and removes everything it made.
 *
 * @module
 */
const here = new URL(".", import.meta.url);
const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-demo-" });
const env = { CELL_HOME: home };
const step = (text: string) => console.error(`\x1b[2m[demo] ${text}\x1b[0m`);

/** The first line a stream prints; the rest of the stream is drained in the background. */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("my-service exited before it was ready");
    text += value;
  }
  (async () => {
    while (!(await reader.read()).done);
  })().catch(() => {});
  return text.slice(0, text.indexOf("\n"));
}

let server: Deno.ChildProcess | undefined;
try {
  step(`CELL_HOME=${home}`);
  step("starting my-service (examples/my_service/main.ts)");
  server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("main.ts", here).pathname],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();

  let timer: ReturnType<typeof setTimeout> | undefined;
  const ready = await Promise.race([
    firstLine(server.stdout),
    new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error("my-service did not start within 30 s")), 30_000)
    ),
  ]).finally(() => clearTimeout(timer));
  step(ready);

  step("calling it from a separate process (examples/my_service/client.ts)");
  const client = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("client.ts", here).pathname, "World"],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const greeting = new TextDecoder().decode(client.stdout).trim();
  if (!client.success) throw new Error(`client exited with code ${client.code}`);
  console.log(greeting);

  step("stopping my-service (SIGTERM: drain, then exit)");
  server.kill("SIGTERM");
  const status = await server.status;
  server = undefined;
  if (!status.success) throw new Error(`my-service exited with code ${status.code}`);
  step("done");
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  Deno.exitCode = 1;
} finally {
  if (server) {
    server.kill("SIGKILL");
    await server.status;
  }
  await Deno.remove(home, { recursive: true });
}
