/**
 * Runs the nucleus in the foreground until SIGINT/SIGTERM, which stop the deployed cells'
 * processes and exit 0: `deno run -A cells/nucleus/main.ts [--heartbeat-ms N] [--max-missed N]`
 * (or `cell nucleus`). Prints one line to stdout once it serves, then logs to stderr.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CellError } from "@cell/sdk";
import { runNucleus } from "./run.ts";

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        "heartbeat-ms": { type: "string" },
        "max-missed": { type: "string" },
        "node-id": { type: "string" },
      },
    }));
  } catch (e) {
    console.error(
      `error: ${(e as Error).message}\n` +
        "usage: main.ts [--heartbeat-ms N] [--max-missed N] [--node-id ID]",
    );
    Deno.exit(2);
  }
  const number = (flag: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < 1) {
      console.error(`error: --${flag} must be a positive integer, like 1000, not '${text}'`);
      Deno.exit(2);
    }
    return n;
  };
  try {
    const heartbeatIntervalMs = number("heartbeat-ms", values["heartbeat-ms"]);
    const maxMissed = number("max-missed", values["max-missed"]);
    Deno.exit(
      await runNucleus({
        ...(heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs }),
        ...(maxMissed === undefined ? {} : { maxMissed }),
        ...(values["node-id"] === undefined ? {} : { nodeId: values["node-id"] }),
      }),
    );
  } catch (e) {
    console.error(`error: ${e instanceof CellError ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
