// The seed's macro coordination across processes: cell A serves `add_field_macro`, cell B's
// `MyStruct` is expanded by it (and carries `extra_field` over the wire), expansions are cached
// so they work with cell A stopped; and a codegen cell's `generate_pydantic_model` writes a
// Pydantic model that Python validates with.
import { join } from "node:path";
import {
  CellError,
  connect,
  expand,
  expandFiles,
  type Infer,
  method,
  protein,
  schemaOf,
  service,
  t,
} from "@cell/sdk";
import { tempCellHome } from "@cell/sdk/testing";
import { generatePydanticModel, pydanticModel } from "@cell/codegen/pydantic";
import { assert, assertEquals, spawnReady } from "./_helpers.ts";
import { addFieldMacro } from "./fixtures/cell_a.ts";
import type { CellB, MyStruct } from "./fixtures/cell_b.ts";

// Type-level: MyStruct's static type has the field cell A's macro adds.
const _full: Infer<typeof MyStruct> = { name: "a", extra_field: 1 };
// @ts-expect-error extra_field is required: the macro's declaration says so
const _missing: Infer<typeof MyStruct> = { name: "a" };

const ROOT = new URL("../", import.meta.url).pathname;

async function rejects(fn: () => Promise<unknown>): Promise<CellError> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof CellError, `expected a CellError, got ${e}`);
    return e;
  }
  throw new Error("expected a rejection");
}

Deno.test("cell B's MyStruct, expanded by cell A's add_field_macro, round-trips extra_field", async () => {
  await using home = await tempCellHome();
  const env = { CELL_HOME: home.path };
  await using _a = await spawnReady("./fixtures/cell_a.ts", [], env);
  await using _b = await spawnReady("./fixtures/cell_b.ts", [], env);
  await using client = await connect<typeof CellB>("cell-b");
  assertEquals(await client.echo({ name: "a", extra_field: 42 }), { name: "a", extra_field: 42 });
  const bad = await rejects(() => client.echo({ name: "a" } as Infer<typeof MyStruct>));
  assertEquals(bad.code, "INVALID_ARGUMENT");
  assertEquals([...Deno.readDirSync(join(home.path, "cache/macros"))].length, 1);
});

Deno.test("a cached expansion works with cell A stopped; a changed input misses the cache", async () => {
  await using home = await tempCellHome();
  const a = await spawnReady("./fixtures/cell_a.ts", [], { CELL_HOME: home.path });
  const input = protein("MyStruct", { name: t.string() });
  try {
    const first = await expand("cell-a", addFieldMacro, input);
    assertEquals(Object.keys(first.schema.properties), ["name", "extra_field"]);
  } finally {
    await a[Symbol.asyncDispose]();
  }
  const files = [...Deno.readDirSync(join(home.path, "cache/macros"))].map((e) => e.name);
  assertEquals(files.length, 1);
  assert(files[0]!.endsWith(".json"));
  const cached = await expand("cell-a", addFieldMacro, protein("MyStruct", { name: t.string() }));
  assert(cached.check({ name: "b", extra_field: 2 }));
  const changed = protein("MyStruct", { name: t.string(), note: t.optional(t.string()) });
  const miss = await rejects(() => expand("cell-a", addFieldMacro, changed));
  assertEquals(miss.code, "UNAVAILABLE");
  assert(miss.message.includes("start it"), miss.message);
});

/** The conformance venv's interpreter (with pydantic), or undefined without Python. */
async function python(): Promise<string | undefined> {
  const given = Deno.env.get("CELL_PYTHON");
  if (given) return given;
  try {
    const out = await new Deno.Command("sh", {
      args: [join(ROOT, "tests/conformance/setup.sh")],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.success) return new TextDecoder().decode(out.stdout).trim();
    console.warn(`setup.sh failed, skipping Python:\n${new TextDecoder().decode(out.stderr)}`);
  } catch (e) {
    console.warn(`No Python (${(e as Error).message}): skipping the Pydantic check`);
  }
  return undefined;
}

const CHECK_USER = `
from pydantic import ValidationError
from user import User
u = User(id=1, name="a")
print("ok", u.id, u.name)
for kwargs in ({"id": -1, "name": "a"}, {"id": "x", "name": 1}, {"id": 2**64, "name": "a"}):
    try:
        User(**kwargs)
        print("accepted")
    except ValidationError as e:
        print("rejected", e.error_count())
`;

Deno.test("the codegen cell's generate_pydantic_model writes a model Python validates with", async () => {
  await using home = await tempCellHome();
  await using _codegen = await spawnReady("./fixtures/codegen_cell.ts", [], {
    CELL_HOME: home.path,
  });
  const output = await Deno.makeTempDir({ prefix: "cell-pydantic-" });
  try {
    /** `#[expand(codegen, generate_pydantic_model)] struct User { id: u64, name: String }` */
    const User = protein("User", { id: t.u64(), name: t.string() });
    const paths = await expandFiles("codegen", generatePydanticModel, User, { output });
    assertEquals(paths, [join(output, "user.py")]);
    const model = await Deno.readTextFile(join(output, "user.py"));
    assert(model.includes("from pydantic import BaseModel"), model);
    assert(model.includes("class User(BaseModel):"), model);
    assert(model.includes("id: int = Field(ge=0, le=2**64-1)"), model);
    const exists = await rejects(() =>
      expandFiles("codegen", generatePydanticModel, User, { output })
    );
    assertEquals(exists.code, "ALREADY_EXISTS");

    const interpreter = await python();
    if (interpreter === undefined) return;
    const out = await new Deno.Command(interpreter, {
      args: ["-c", CHECK_USER],
      cwd: output,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    assert(out.success, text.decode(out.stderr));
    assertEquals(text.decode(out.stdout).trim().split("\n"), [
      "ok 1 a",
      "rejected 1",
      "rejected 2",
      "rejected 1",
    ]);
  } finally {
    await Deno.remove(output, { recursive: true });
  }
});

const CHECK_ALL = `
from pydantic import ValidationError
from all_types import AllTypes
good = dict(b=True, s="s", by=b"x", f32=1.5, f64=2.5, i8=-128, i16=1, i32=1, i64=-2**63,
            u8=255, u16=1, u32=1, u64=2**64-1, a=None, l=[1], m={"k": {"label": "a", "class": "c"}},
            e="x", n={"next": ["n"]})
print("ok", AllTypes(**good).m["k"].class_)
for key, value in (("u8", 256), ("i8", -129), ("l", [-1]), ("e", "z"), ("m", {"k": {}}), ("s", 1)):
    try:
        AllTypes(**{**good, key: value})
        print("accepted", key)
    except ValidationError:
        print("rejected", key)
`;

Deno.test("Pydantic models cover every IR type, nested proteins and keyword field names", async () => {
  const Tag = protein("Tag", { label: t.string(), class: t.optional(t.string()) });
  const Node = protein("Node", { next: t.optional(t.list(t.string())) });
  const AllTypes = protein("AllTypes", {
    b: t.bool(),
    s: t.string(),
    by: t.bytes(),
    f32: t.f32(),
    f64: t.f64(),
    i8: t.i8(),
    i16: t.i16(),
    i32: t.i32(),
    i64: t.i64(),
    u8: t.u8(),
    u16: t.u16(),
    u32: t.u32(),
    u64: t.u64(),
    a: t.any(),
    l: t.list(t.u8()),
    m: t.map(Tag),
    e: t.enum("x", "y"),
    o: t.optional(Tag),
    n: Node,
  });
  const ir = schemaOf("all", service({ get: method(AllTypes, AllTypes) }));
  const [file] = pydanticModel(ir.proteins[0]!, ir);
  assertEquals(file?.path, "all_types.py");
  const interpreter = await python();
  if (interpreter === undefined) return;
  const dir = await Deno.makeTempDir({ prefix: "cell-pydantic-" });
  try {
    await Deno.writeTextFile(join(dir, file!.path), file!.contents);
    const out = await new Deno.Command(interpreter, {
      args: ["-c", CHECK_ALL],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    assert(out.success, `${text.decode(out.stderr)}\n${file!.contents}`);
    assertEquals(text.decode(out.stdout).trim().split("\n"), [
      "ok c",
      ...["u8", "i8", "l", "e", "m", "s"].map((k) => `rejected ${k}`),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
