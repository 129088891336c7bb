/**
 * Cell: a Deno-first toolkit for distributed services. A cell declares typed messages
 * (proteins) and handler methods, serves them, and is called through typed clients.
 *
 * This root module re-exports the SDK, `@cell/sdk`.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { protein, t } from "./mod.ts";
 * const Request = protein("Request", { name: t.string() });
 * assert.ok(Request.check({ name: "World" }));
 * ```
 *
 * @module
 */
export * from "@cell/sdk";
