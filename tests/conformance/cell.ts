/**
 * Serves the conformance cell as `conformance` (or the name in argv[0]) until SIGINT/SIGTERM:
 * `deno run -A tests/conformance/cell.ts`. Prints `ready <endpoints>` once it listens.
 *
 * @module
 */
import { serve } from "@cell/sdk";
import { implementation } from "./service.ts";

const server = await serve(Deno.args[0] ?? "conformance", implementation);
console.log(`ready ${server.endpoints.join(", ")}`);
await server.finished;
