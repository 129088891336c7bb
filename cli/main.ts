/**
 * The `cell` executable. From a checkout, run it with `deno task cell --help`, or install it
 * on the PATH with `deno install -g -A -f -n cell -c deno.json cli/main.ts` (from the
 * repository root: `-c` brings the workspace's import map along).
 *
 * @module
 */
import { denoIo } from "./io.ts";
import { run } from "./mod.ts";

if (import.meta.main) {
  Deno.exit(await run(Deno.args, denoIo()));
}
