/**
 * Pins the ring benchmarks' servers. `_cpus.ts`'s `canPin()` looks at
 * `navigator.hardwareConcurrency`, which inside the pinned client (`pinSelf`) is 1, so its
 * `onCpu` then leaves servers on the client's CPU; with two busy-polling sides on one CPU, a
 * ring round trip costs a scheduler time slice. This asks `taskset` directly.
 *
 * @module
 */
import { SERVER_CPU } from "./_cpus.ts";

let pinnable: boolean | undefined;

/** `command args` to run on the server CPU when `taskset` works and pinning is not disabled. */
export function onServerCpu(command: string, args: string[]): [string, string[]] {
  if (pinnable === undefined) {
    pinnable = false;
    if (Deno.env.get("CELL_BENCH_PIN") !== "0") {
      try {
        pinnable = new Deno.Command("taskset", {
          args: ["-c", String(SERVER_CPU), "true"],
          stdout: "null",
          stderr: "null",
        }).outputSync().success;
      } catch {
        pinnable = false;
      }
    }
  }
  return pinnable ? ["taskset", ["-c", String(SERVER_CPU), command, ...args]] : [command, args];
}
