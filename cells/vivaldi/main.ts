/**
 * Runs this host's Vivaldi cell in the foreground until SIGINT/SIGTERM:
 * `deno run -A cells/vivaldi/main.ts [--interval-ms N]`. The nucleus must run. Prints one line
 * to stdout once it serves and has registered.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CellError } from "@cell/sdk";
import { startVivaldi } from "./cell.ts";

if (import.meta.main) {
  let intervalMs: number | undefined;
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: { "interval-ms": { type: "string" } },
    });
    const text = values["interval-ms"];
    if (text !== undefined) {
      intervalMs = Number(text);
      if (!/^\d+$/.test(text) || intervalMs < 1) {
        throw new TypeError(`--interval-ms must be a positive integer, like 1000, not '${text}'`);
      }
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}\nusage: main.ts [--interval-ms N]`);
    Deno.exit(2);
  }
  try {
    const vivaldi = await startVivaldi(intervalMs === undefined ? {} : { intervalMs });
    console.log(`ready ${vivaldi.server.endpoints.join(" ")}`);
    await vivaldi.server.finished;
    await vivaldi.stop();
    Deno.exit(0);
  } catch (e) {
    console.error(`error: ${e instanceof CellError ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
