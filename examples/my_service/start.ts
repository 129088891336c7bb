/**
 * `deno task start`: a local cluster in the foreground until Ctrl-C. It starts the nucleus on
 * `$CELL_HOME` (default `~/.cell`, initialised as node 1 if it is new), deploys `my-service`
 * with 3 instances, says how to call it, and on Ctrl-C (or SIGTERM) stops everything.
 *
 * @module
 */
import { cellHome } from "@cell/sdk";
import { startCluster } from "./cluster.ts";

const home = cellHome();
const encoder = new TextEncoder();
const out = (text: string) => Deno.stdout.writeSync(encoder.encode(text));
const note = (text: string) => console.error(`\x1b[2m${text}\x1b[0m`);

const cluster = await startCluster({ home, instances: 3, io: { out, note } });
out(
  `\nCluster running on CELL_HOME=${home}. In another shell:\n` +
    `  deno task cell --home ${home} call my-service greet '{"name":"World"}'\n` +
    `  deno task cell --home ${home} health\n` +
    `  deno task cell --home ${home} scale my-service 5\n` +
    `Press Ctrl-C to stop.\n`,
);

const stop = Promise.withResolvers<void>();
const onSignal = () => stop.resolve();
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
await stop.promise;
Deno.removeSignalListener("SIGINT", onSignal);
Deno.removeSignalListener("SIGTERM", onSignal);
note("stopping");
await cluster.stop();
note("stopped");
