/**
 * `deno task demo`: the seed's "Complete Setup Guide", run for real. In a temporary CELL_HOME
 * it runs `cell init`, starts the nucleus, deploys `my-service` with 3 instances, calls it from
 * a separate client process, prints `cell health` and `cell topology`, stops everything, checks
 * that no process is left, and removes the home.
 *
 * @module
 */
import { alive, type Cluster, startCluster } from "./cluster.ts";

const here = new URL(".", import.meta.url);
const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-demo-" });
const encoder = new TextEncoder();
const out = (text: string) => Deno.stdout.writeSync(encoder.encode(text));
const note = (text: string) => console.error(`\x1b[2m[demo] ${text}\x1b[0m`);

let cluster: Cluster | undefined;
try {
  note(`CELL_HOME=${home}`);
  cluster = await startCluster({ home, instances: 3, io: { out, note } });

  out(`$ deno run -A examples/my_service/client.ts World\n`);
  const client = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("client.ts", here).pathname, "World"],
    env: { CELL_HOME: home },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!client.success) throw new Error(`the client exited with code ${client.code}`);
  const greeting = new TextDecoder().decode(client.stdout).trim();
  out(`${greeting}\n`);
  if (greeting !== "Hello, World!") throw new Error(`unexpected greeting '${greeting}'`);

  if (await cluster.cell(["health"]) !== 0) throw new Error("cell health says unhealthy");
  await cluster.cell(["topology"]);

  const nucleusPid = cluster.nucleusPid;
  const stopping = cluster;
  cluster = undefined;
  await stopping.stop();
  if (alive(nucleusPid)) throw new Error(`the nucleus (pid ${nucleusPid}) is still running`);
  note("stopped: no process left");
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  Deno.exitCode = 1;
  await cluster?.stop().catch((e) => console.error(`cleanup: ${(e as Error).message}`));
} finally {
  await Deno.remove(home, { recursive: true });
}
