/**
 * Serves `my-service` until SIGINT/SIGTERM: `deno run -A examples/my_service/main.ts`.
 *
 * @module
 */
import { serve } from "@cell/sdk";
import { MyService } from "./service.ts";

const server = await serve(
  "my-service",
  MyService.implement({
    greet: ({ name }) => ({ greeting: `Hello, ${name}!` }),
  }),
);

console.log(`my-service serving on ${server.endpoints.join(", ")}`);
await server.finished;
