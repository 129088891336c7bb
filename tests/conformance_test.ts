// Generated clients against a real cell: each language's client is generated with `cell generate`
// from the running conformance cell, checked with the language's own tools, then its runner
// executes tests/conformance/cases.json and the wire vectors (see tests/conformance/README.md).
//
// Python needs the venv of tests/conformance/setup.sh: CELL_PYTHON names its interpreter, else
// the test runs setup.sh itself (fast once the venv exists). Without python3 the Python steps
// are skipped with a message.
import { join } from "node:path";
import { run } from "@cell/cli";
import { assert, assertEquals, spawnReady } from "./_helpers.ts";
import { quietNucleus } from "./_instances.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CASES = join(ROOT, "tests/conformance/cases.json");
const VECTORS = join(ROOT, "tests/vectors");

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Output> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    env: options.env ?? {},
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

function assertOk(out: Output, what: string): void {
  assert(out.code === 0, `${what} failed (${out.code}):\n${out.stdout}\n${out.stderr}`);
}

/** Runs `cell ...args` in this process; fails the test on a non-zero exit. */
async function cell(args: string[]): Promise<string> {
  let stdout = "";
  let stderr = "";
  const code = await run(args, { stdout: (t) => stdout += t, stderr: (t) => stderr += t });
  assert(code === 0, `cell ${args.join(" ")} exited with ${code}: ${stderr}`);
  return stdout;
}

/** The interpreter of the conformance venv, or `undefined` when Python is not available. */
let pythonFound: Promise<string | undefined> | undefined;
function python(): Promise<string | undefined> {
  pythonFound ??= (async () => {
    const given = Deno.env.get("CELL_PYTHON");
    if (given) return given;
    try {
      const out = await exec("sh", [join(ROOT, "tests/conformance/setup.sh")], {
        env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/tmp" },
      });
      if (out.code === 0) return out.stdout.trim();
      console.warn(`tests/conformance/setup.sh failed, skipping Python:\n${out.stderr}`);
    } catch (e) {
      console.warn(`No Python (${(e as Error).message}): skipping the Python conformance steps`);
    }
    return undefined;
  })();
  return pythonFound;
}

/** Checks a runner's JSON lines: every check passed, and there were `atLeast` of them. */
function assertRunner(out: Output, what: string, atLeast: number): void {
  const lines = out.stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l)
  );
  const failures = lines.filter((l) => l.ok === false).map((l) => `${l.name}: ${l.error}`);
  assertEquals(failures, [], `${what}:\n${out.stderr}`);
  const summary = lines.find((l) => l.summary === true);
  assert(summary !== undefined, `${what} printed no summary:\n${out.stdout}\n${out.stderr}`);
  assert(summary.passed >= atLeast, `${what} passed only ${summary.passed} checks`);
  assertOk(out, what);
}

async function tempDir(prefix: string): Promise<string> {
  return await Deno.makeTempDir({ dir: "/tmp", prefix });
}

const CASE_COUNT = (JSON.parse(await Deno.readTextFile(CASES)) as { cases: unknown[] }).cases
  .length;
const VECTOR_COUNT = (await Promise.all(
  ["msgpack", "frames", "ignored", "malformed"].map(async (f) =>
    (JSON.parse(await Deno.readTextFile(join(VECTORS, `${f}.json`))) as unknown[]).length
  ),
)).reduce((a, b) => a + b);

const STRICTEST = {
  strict: true,
  erasableSyntaxOnly: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  noImplicitReturns: true,
  exactOptionalPropertyTypes: true,
};

const TS_USAGE =
  `// Type-checked only: the generated types accept what they should and refuse the rest.
import { CellError, type Code, ConformanceClient, type Outer, type Scalars } from "./conformance.ts";

export async function use(client: ConformanceClient): Promise<string> {
  const scalars: Scalars = await client.echoScalars({
    b: true, s: "", by: new Uint8Array(), f32: 1, f64: 1, i8: 1, i16: 1, i32: 1, i64: 1,
    u8: 1, u16: 1, u32: 1, u64: 1,
  }, { timeoutMs: 100, signal: AbortSignal.timeout(100) });
  const outer: Outer = await client.echoNested({
    name: "", inner: { id: 1, label: "" }, items: [], by_name: {}, matrix: [[1]], tags: {},
    color: "dark-blue",
  });
  // @ts-expect-error: not one of the enum's values
  await client.echoNested({ ...outer, color: "purple" });
  // @ts-expect-error: a required field is missing
  await client.echoBlob({});
  const code: Code = new CellError("NOT_FOUND", "x").code;
  return scalars.s + outer.maybe?.label + code;
}
`;

const PY_USAGE = `"""Type-checked only: mypy --strict accepts this file."""
from conformance import AsyncConformanceClient, ConformanceClient, NotFoundError, Outer


def use(client: ConformanceClient) -> str:
    outer: Outer = client.echo_nested(
        name="", inner={"id": 1, "label": ""}, items=[], by_name={}, matrix=[[1]], tags={},
        color="dark-blue", timeout=0.5,
    )
    try:
        client.fail(code="NOT_FOUND", message="x")
    except NotFoundError as e:
        return e.code + outer["inner"]["label"]
    maybe = outer.get("maybe")
    return "" if maybe is None else maybe["label"]


async def use_async(client: AsyncConformanceClient) -> bytes:
    return (await client.make_blob(size=1))["data"]
`;

const PY_WRONG = `from conformance import ConformanceClient


def use(client: ConformanceClient) -> None:
    client.echo_nested(
        name="", inner={"id": 1, "label": ""}, items=[], by_name={}, matrix=[], tags={},
        color="purple",
    )
`;

Deno.test("generated TypeScript and Python clients pass the conformance cases and wire vectors", async (t) => {
  const home = await tempDir("cell-conf-");
  const out = await tempDir("cell-conf-gen-");
  try {
    await using _cell = await spawnReady("./conformance/cell.ts", [], {
      CELL_HOME: home,
      CELL_NUCLEUS: "0",
      PATH: Deno.env.get("PATH") ?? "",
    });
    const env = { CELL_HOME: home, PATH: Deno.env.get("PATH") ?? "" };

    await t.step("typescript", async () => {
      const dir = join(out, "ts");
      await cell(["--home", home, "generate", "conformance", "-l", "typescript", "-o", dir]);
      const head = (await Deno.readTextFile(join(dir, "conformance.ts"))).split("\n")[0];
      assertEquals(head, "// @generated by cell-codegen 0.1.0. DO NOT EDIT.");
      await Deno.writeTextFile(join(dir, "usage.ts"), TS_USAGE);
      // erasableSyntaxOnly: Node's type stripping must be able to run the file as it is.
      await Deno.writeTextFile(
        join(dir, "deno.json"),
        JSON.stringify({ compilerOptions: STRICTEST }),
      );
      const files = [join(dir, "conformance.ts"), join(dir, "usage.ts")];
      assertOk(
        await exec(Deno.execPath(), [
          "check",
          "--quiet",
          "--config",
          join(dir, "deno.json"),
          ...files,
        ], {
          env,
        }),
        "deno check of the generated client",
      );
      const runner = join(ROOT, "tests/conformance/typescript/run.ts");
      const runEnv = { ...env, CELL_CONFORMANCE_CLIENT: dir };
      assertRunner(
        await exec(Deno.execPath(), ["run", "-A", runner, "cases", CASES], { env: runEnv }),
        "TypeScript cases",
        CASE_COUNT + 2,
      );
      assertRunner(
        await exec(Deno.execPath(), ["run", "-A", runner, "vectors", VECTORS], { env: runEnv }),
        "TypeScript vectors",
        VECTOR_COUNT,
      );
      // The same client under Node.js (20 has no type stripping: tsx runs the .ts as it is).
      // As .mts, so that tsx runs it as an ES module (top-level await) without a package.json.
      const nodeRunner = join(dir, "run.mts");
      await Deno.copyFile(runner, nodeRunner);
      const nodeEnv = { ...runEnv, HOME: Deno.env.get("HOME") ?? "/root" };
      const tsx = ["-y", "tsx@4.20.3", nodeRunner];
      assertRunner(
        await exec("npx", [...tsx, "cases", CASES], { env: nodeEnv }),
        "TypeScript cases under Node.js",
        CASE_COUNT + 2,
      );
      assertRunner(
        await exec("npx", [...tsx, "vectors", VECTORS], { env: nodeEnv }),
        "TypeScript vectors under Node.js",
        VECTOR_COUNT,
      );
    });

    const py = await python();
    await t.step({
      name: "python",
      ignore: py === undefined,
      fn: async () => {
        const dir = join(out, "py");
        await cell(["--home", home, "generate", "conformance", "-l", "python", "-o", dir]);
        const files = ["__init__.py", "_runtime.py", "py.typed"];
        for (const f of files) {
          const head = (await Deno.readTextFile(join(dir, "conformance", f))).split("\n")[0];
          assertEquals(head, "# @generated by cell-codegen 0.1.0. DO NOT EDIT.", f);
        }
        const pyEnv = { ...env, CELL_CONFORMANCE_CLIENT: dir, MYPY_CACHE_DIR: join(out, "mypy") };
        assertOk(
          await exec(py!, [
            "-m",
            "py_compile",
            join(dir, "conformance/__init__.py"),
            join(dir, "conformance/_runtime.py"),
          ], {
            env: pyEnv,
          }),
          "py_compile",
        );
        await Deno.writeTextFile(join(dir, "usage.py"), PY_USAGE);
        assertOk(
          await exec(py!, ["-m", "mypy", "--strict", "conformance", "usage.py"], {
            env: pyEnv,
            cwd: dir,
          }),
          "mypy --strict of the generated package",
        );
        await Deno.writeTextFile(join(dir, "wrong.py"), PY_WRONG);
        const wrong = await exec(py!, ["-m", "mypy", "--strict", "wrong.py"], {
          env: pyEnv,
          cwd: dir,
        });
        assert(
          wrong.code === 1 && wrong.stdout.includes("purple"),
          `mypy accepted a bad enum:\n${wrong.stdout}`,
        );
        const runner = join(ROOT, "tests/conformance/python/run.py");
        assertRunner(
          await exec(py!, [runner, "cases", CASES], { env: pyEnv }),
          "Python cases",
          2 * CASE_COUNT + 2,
        );
        assertRunner(
          await exec(py!, [runner, "vectors", VECTORS], { env: pyEnv }),
          "Python vectors",
          VECTOR_COUNT,
        );
      },
    });
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});

const TS_SEED = `import { MyServiceClient } from "./my_service.ts";
const client = new MyServiceClient();
await client.connect();
const result = await client.greet({ name: "TypeScript" });
console.log(result.greeting);
client.close();
`;

Deno.test("the seed's Python snippet prints Hello, Python! through a generated client, and its TypeScript twin Hello, TypeScript!", async (t) => {
  const py = await python();
  const home = await tempDir("cell-seed-");
  const out = await tempDir("cell-seed-gen-");
  try {
    await using _cell = await spawnReady("../examples/my_service/main.ts", [], {
      CELL_HOME: home,
      CELL_NUCLEUS: "0",
      PATH: Deno.env.get("PATH") ?? "",
    });
    await t.step("typescript", async () => {
      const dir = join(out, "ts");
      await cell(["--home", home, "generate", "my-service", "-l", "typescript", "-o", dir]);
      await Deno.writeTextFile(join(dir, "seed.ts"), TS_SEED);
      const result = await exec(Deno.execPath(), ["run", "-A", join(dir, "seed.ts")], {
        env: { CELL_HOME: home },
      });
      assertOk(result, "the TypeScript snippet");
      assertEquals(result.stdout, "Hello, TypeScript!\n");
    });
    await t.step({
      name: "python",
      ignore: py === undefined,
      fn: async () => {
        const dir = join(out, "py");
        await cell(["--home", home, "generate", "my-service", "--language", "python", "-o", dir]);
        const snippet = "from my_service import MyServiceClient; client = MyServiceClient(); " +
          "client.connect(); result = client.greet(name=\"Python\"); print(result['greeting'])";
        const result = await exec(py!, ["-c", snippet], { env: { CELL_HOME: home }, cwd: dir });
        assertOk(result, "the snippet");
        assertEquals(result.stdout, "Hello, Python!\n");
      },
    });
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});

Deno.test("generated TypeScript and Python clients find an instance through the nucleus", async (t) => {
  const home = await tempDir("cell-conf-nuc-");
  const out = await tempDir("cell-conf-nuc-gen-");
  const nucleus = await quietNucleus(home);
  try {
    // An instance id puts the socket at run/conformance@1.sock: only discovery finds it.
    await using _cell = await spawnReady("./conformance/cell.ts", [], {
      CELL_HOME: home,
      CELL_INSTANCE_ID: "1",
      PATH: Deno.env.get("PATH") ?? "",
    });
    const module = join(ROOT, "tests/conformance/service.ts");
    for (const language of ["typescript", "python"]) {
      const args = ["-l", language, "-o", join(out, language), "--from-module", module];
      await cell(["generate", "conformance", ...args, "--export", "Conformance"]);
    }
    const env = { CELL_HOME: home, PATH: Deno.env.get("PATH") ?? "" };
    await t.step("typescript", async () => {
      const runner = join(ROOT, "tests/conformance/typescript/run.ts");
      assertRunner(
        await exec(Deno.execPath(), ["run", "-A", runner, "cases", CASES], {
          env: { ...env, CELL_CONFORMANCE_CLIENT: join(out, "typescript") },
        }),
        "TypeScript cases through the nucleus",
        CASE_COUNT + 2,
      );
    });
    const py = await python();
    await t.step({
      name: "python",
      ignore: py === undefined,
      fn: async () => {
        assertRunner(
          await exec(py!, [join(ROOT, "tests/conformance/python/run.py"), "cases", CASES], {
            env: { ...env, CELL_CONFORMANCE_CLIENT: join(out, "python") },
          }),
          "Python cases through the nucleus",
          2 * CASE_COUNT + 2,
        );
      },
    });
  } finally {
    await nucleus.stop();
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});
