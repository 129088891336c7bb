// Compiles ffi/test/ring_test.c against the library's sources and runs it.
import { compile } from "./build.ts";

Deno.test("the C ring passes its property tests (ffi/test/ring_test.c)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cell-ring-ctest-" });
  try {
    const test = await (await fetch(new URL("./test/ring_test.c", import.meta.url))).text();
    const binary = `${dir}/ring_test`;
    await compile(binary, ["-O1", "-std=c11", "-Wall", "-Wextra", "-Werror"], {
      "ring_test.c": test,
    });
    const result = await new Deno.Command(binary, { stdout: "piped", stderr: "piped" }).output();
    const text = new TextDecoder().decode(result.stderr);
    if (!result.success) throw new Error(`ring_test.c failed:\n${text}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
