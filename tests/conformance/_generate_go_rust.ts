// Generates the Go and Rust clients of the conformance cell, with the runners beside them:
// `deno run -A tests/conformance/_generate_go_rust.ts <dir>` writes <dir>/go and <dir>/rust.
import { schemaOf } from "@cell/sdk";
import { withDocs } from "../../sdk/tsdoc.ts";
import { goGenerator } from "../../codegen/go.ts";
import { rustGenerator } from "../../codegen/rust.ts";
import { Conformance } from "./service.ts";

/**
 * Writes both runners under `dir` (`go/`, `rust/`), each with the generated client of the
 * conformance cell in its `client/` unless `clients` is false (then `cell generate` writes it).
 */
export async function generateRunners(dir: string, clients = true): Promise<void> {
  const schema = await withDocs(schemaOf("conformance", Conformance));
  const here = new URL(".", import.meta.url).pathname;
  for (
    const [lang, gen, files] of [
      ["go", goGenerator, ["go.mod", "go.sum", "main.go", "values.go", "vectors.go"]],
      ["rust", rustGenerator, ["Cargo.toml", "src/main.rs", "src/values.rs", "src/vectors.rs"]],
    ] as const
  ) {
    for (const f of clients ? gen.generate(schema, { version: "0.1.0" }) : []) {
      const path = `${dir}/${lang}/client/${f.path}`;
      await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.writeTextFile(path, f.contents);
    }
    for (const f of files) {
      const path = `${dir}/${lang}/${f}`;
      await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.copyFile(`${here}${lang}/${f}`, path);
    }
  }
}

if (import.meta.main) await generateRunners(Deno.args[0] ?? ".");
