/**
 * The greet service every contender of `bench:rpc` implements; run as a module it serves it over
 * a Unix socket in `$CELL_HOME` and prints "ready".
 *
 * @module
 */
import { method, protein, serve, service, t } from "@cell/sdk";

/** Who to greet. */
export const Request = protein("Request", { name: t.string() });
/** The greeting. */
export const Response = protein("Response", { greeting: t.string() });
/** The seed's greeting service. */
export const BenchGreeter = service({ greet: method(Request, Response, { idempotent: true }) });

/** The handlers. */
export const greeter = BenchGreeter.implement({
  greet: ({ name }) => ({ greeting: `Hello, ${name}!` }),
});

if (import.meta.main) {
  const server = await serve("bench-greeter", greeter, { inproc: false });
  console.log("ready");
  await server.finished;
}
