/**
 * Calls `my-service`: `deno run -A examples/my_service/client.ts [name]`.
 *
 * @module
 */
import { connect } from "@cell/sdk";
import type { MyService } from "./service.ts";

await using client = await connect<MyService>("my-service");

const response = await client.greet({ name: Deno.args[0] ?? "World" });

console.log(response.greeting);
