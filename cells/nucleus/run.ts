/**
 * {@linkcode runNucleus}: the nucleus as a foreground program, shared by `main.ts` and
 * `cell nucleus`.
 *
 * @module
 */
import { type NucleusOptions, type RunningNucleus, startNucleus } from "./nucleus.ts";

/** Options of {@linkcode runNucleus}. */
export interface RunOptions extends NucleusOptions {
  /**
   * Writes the ready line; the running nucleus is there for callers that print their own.
   * @default {writes the line to stdout}
   */
  ready?: (line: string, nucleus: RunningNucleus) => void;
  /**
   * Resolves when the nucleus should stop.
   * @default {the first SIGINT or SIGTERM}
   */
  until?: Promise<unknown>;
}

function signalled(): { promise: Promise<string>; dispose(): void } {
  const { promise, resolve } = Promise.withResolvers<string>();
  const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const handler = () => resolve(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return {
    promise,
    dispose: () => handlers.forEach(([s, h]) => Deno.removeSignalListener(s, h)),
  };
}

/**
 * Starts the nucleus, prints `nucleus serving on <endpoint> (node <id>, pid <pid>)`, waits
 * for SIGINT/SIGTERM (or `until`), then stops the deployed cells' processes and returns 0.
 * Throws when it cannot start: another nucleus runs on the same home, for example.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runNucleus } from "@cell/nucleus";
 *
 * const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-" });
 * let line = "";
 * const code = await runNucleus({
 *   home,
 *   nodeId: "1",
 *   log: () => {},
 *   ready: (text) => line = text,
 *   until: Promise.resolve(),
 * });
 * assert.ok(code === 0 && line.startsWith("nucleus serving on"));
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export async function runNucleus(options: RunOptions = {}): Promise<number> {
  const { ready = (line: string) => console.log(line), until, ...nucleusOptions } = options;
  const log = nucleusOptions.log ?? ((message: string) => console.error(`nucleus: ${message}`));
  const signals = until === undefined ? signalled() : undefined;
  try {
    const nucleus = await startNucleus({ ...nucleusOptions, log });
    const endpoints = nucleus.server.endpoints.join(", ");
    ready(`nucleus serving on ${endpoints} (node ${nucleus.nodeId}, pid ${Deno.pid})`, nucleus);
    const previous = nucleus.tookOverFrom;
    if (previous) log(`took over the lock of pid ${previous.pid}, which is no longer running`);
    log(
      `heartbeat every ${nucleus.registry.heartbeatIntervalMs} ms, instances expire after ` +
        `${nucleus.registry.maxMissed} missed`,
    );
    const reason = await (until ?? signals!.promise);
    log(`${typeof reason === "string" ? reason : "asked to stop"}: stopping cells and exiting`);
    await nucleus.stop({ stopInstances: true });
    return 0;
  } finally {
    signals?.dispose();
  }
}
