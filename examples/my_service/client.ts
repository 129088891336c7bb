/**
 * Calls `my-service`: `deno run -A examples/my_service/client.ts [name]`.
 *
 * @module
 */
import { connect } from "@cell/sdk";
import { MyService } from "./service.ts";

// The service value (not only its type): typed calls, retries of idempotent methods, and
// codecs compiled from its proteins.
await using client = await connect("my-service", { service: MyService });

const response = await client.greet({ name: Deno.args[0] ?? "World" });

console.log(response.greeting);
