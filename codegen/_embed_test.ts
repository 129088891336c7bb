import assert from "node:assert/strict";
import { renderRuntimeModule } from "./_embed.ts";

Deno.test("_runtime.ts holds the current text of runtime/ (else run codegen/_embed.ts)", async () => {
  const expected = await renderRuntimeModule(new URL("./runtime/", import.meta.url));
  const actual = await Deno.readTextFile(new URL("./_runtime.ts", import.meta.url));
  assert.ok(actual === expected, "codegen/_runtime.ts is stale: run deno run -A codegen/_embed.ts");
});
