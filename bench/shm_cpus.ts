/**
 * Pins the ring benchmarks' servers to the server CPU, like every other server of `bench:rpc`
 * (see `_cpus.ts`). With two busy-polling sides on one CPU, a ring round trip would cost a
 * scheduler time slice.
 *
 * @module
 */
import { onCpu, SERVER_CPU } from "./_cpus.ts";

/** `command args` to run on the server CPU when pinning is possible, else unchanged. */
export function onServerCpu(command: string, args: string[]): [string, string[]] {
  return onCpu(SERVER_CPU, command, args);
}
