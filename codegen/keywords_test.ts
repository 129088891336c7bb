// Names that are keywords or collide in the target languages must be renamed into code that
// compiles: testdata/keywords.json is an IR full of them (`type`, `class`, `None`, `function`,
// `delete`, `fooBar` next to `foo_bar`, a protein named `CellError`, ...).
import assert from "node:assert/strict";
import { join } from "node:path";
import { generate, parseSchema, VERSION } from "./mod.ts";

const SCHEMA = parseSchema(
  JSON.parse(await Deno.readTextFile(new URL("./testdata/keywords.json", import.meta.url))),
);

async function write(dir: string, language: string): Promise<string[]> {
  const paths: string[] = [];
  for (const file of generate(SCHEMA, language, { version: VERSION })) {
    const path = join(dir, file.path);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeTextFile(path, file.contents);
    paths.push(path);
  }
  return paths;
}

async function exec(command: string, args: string[], cwd?: string) {
  const out = await new Deno.Command(command, {
    args,
    ...(cwd === undefined ? {} : { cwd }),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, text: text.decode(out.stdout) + text.decode(out.stderr) };
}

/** The conformance venv's interpreter (tests/conformance/setup.sh), else python3 if present. */
async function python(): Promise<{ path: string; venv: boolean } | undefined> {
  const given = Deno.env.get("CELL_PYTHON");
  if (given) return { path: given, venv: true };
  const cache = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/", ".cache");
  const venv = join(cache, "cell", "venv", "bin", "python");
  if (await Deno.stat(venv).then(() => true, () => false)) return { path: venv, venv: true };
  const system = await exec("python3", ["--version"]).catch(() => undefined);
  return system?.code === 0 ? { path: "python3", venv: false } : undefined;
}

Deno.test("a TypeScript client of a schema full of keywords passes deno check", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cell-kw-ts-" });
  try {
    const [file] = await write(dir, "typescript");
    const text = await Deno.readTextFile(file!);
    for (
      const expected of [
        "export class ClassClient extends CellClient",
        "export interface CellError_2 {", // not the runtime's CellError
        "export interface Map_2 {", // not the global Map
        "export interface Function_2 {",
        "  delete(request: CellError_2, options?: CallOptions): Promise<Map_2> {",
        "  call_(request: MyThing, options?: CallOptions): Promise<MyThing_2> {",
        '  "1st"?: string;',
      ]
    ) assert.ok(text.includes(expected), expected);
    const checked = await exec(Deno.execPath(), ["check", "--quiet", file!]);
    assert.equal(checked.code, 0, checked.text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a Python client of a schema full of keywords compiles, imports and passes mypy", async (t) => {
  const py = await python();
  if (py === undefined) {
    await t.step({ name: "python3 is not installed", ignore: true, fn: () => {} });
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "cell-kw-py-" });
  try {
    const files = await write(dir, "python");
    const init = await Deno.readTextFile(files[0]!);
    for (
      const expected of [
        "class ClassClient(CellClient):",
        "    def class_(",
        "    def call_(",
        "        class_: str,",
        "        from_: str,",
        "        none: str,", // the field "None"
        "        timeout_: str,", // not the call's timeout
        "        foo_bar_2: str,",
        "        _1st: Optional[str] = None,",
        'None_ = TypedDict("None_", {',
      ]
    ) assert.ok(init.includes(expected), expected);
    const compiled = await exec(py.path, [
      "-m",
      "py_compile",
      ...files.filter((f) => f.endsWith(".py")),
    ]);
    assert.equal(compiled.code, 0, compiled.text);
    if (!py.venv) return; // msgpack and mypy come with the venv
    const imported = await exec(
      py.path,
      ["-c", "import class_; print(class_.METHODS['None'][0])"],
      dir,
    );
    assert.equal(imported.text, "none\n");
    const typed = await exec(py.path, [
      "-m",
      "mypy",
      "--strict",
      "--cache-dir",
      join(dir, ".mypy"),
      "class_",
    ], dir);
    assert.equal(typed.code, 0, typed.text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
