import { assert, assertEquals, assertRejects } from "./_assert_test.ts";
import {
  CellError,
  codegenMacro,
  connect,
  expand,
  expandFiles,
  type Infer,
  type MacroService,
  macroService,
  protein,
  proteinMacro,
  serve,
  t,
  withMacros,
} from "./mod.ts";
import { tempCellHome } from "./testing.ts";
import { Greeter } from "../tests/fixtures/cells.ts";

const addFieldMacro = proteinMacro("add_field_macro", { fields: { extra_field: t.u64() } });
const noServe = { socket: false, handleSignals: false } as const;

Deno.test("expand() adds a protein macro's fields, typed and validated", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("cell-a", macroService(addFieldMacro), noServe);
  const MyStruct = await expand("cell-a", addFieldMacro, protein("MyStruct", { name: t.string() }));
  assertEquals(MyStruct.name, "MyStruct");
  assertEquals(Object.keys(MyStruct.schema.properties), ["name", "extra_field"]);
  const value: Infer<typeof MyStruct> = { name: "a", extra_field: 1 };
  assert(MyStruct.check(value));
  assert(!MyStruct.check({ name: "a", extra_field: -1 }));
  // @ts-expect-error extra_field is required
  const missing: Infer<typeof MyStruct> = { name: "a" };
  assert(!MyStruct.check(missing));
});

Deno.test("expand() runs a general protein macro and is cached by the input's hash", async () => {
  await using home = await tempCellHome();
  let runs = 0;
  const addId = proteinMacro("add_id", {
    fields: { id: t.u64() },
    expand: () => {
      runs++;
      return [{ name: "id", type: { kind: "u64" }, optional: false }];
    },
  });
  const server = await serve("ids", macroService(addId), noServe);
  const User = protein("User", { name: t.string() });
  await expand("ids", addId, User);
  await expand("ids", addId, User);
  assertEquals(runs, 1);
  assertEquals([...Deno.readDirSync(`${home.path}/cache/macros`)].length, 1);
  await server.shutdown();
  const again = await expand("ids", addId, User);
  assertEquals(Object.keys(again.schema.properties), ["name", "id"]);
  const err = await assertRejects(
    () => expand("ids", addId, protein("User", { name: t.string(), age: t.u8() })),
    CellError,
  );
  assertEquals(err.code, "UNAVAILABLE");
  assert(err.message.includes("start it"), err.message);
});

Deno.test("expand() names the fields when the served macro differs from its declaration", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("cell-a", macroService(addFieldMacro), noServe);
  const stale = proteinMacro("add_field_macro", { fields: { extra_field: t.string() } });
  const err = await assertRejects(
    () => expand("cell-a", stale, protein("MyStruct", { name: t.string() })),
    CellError,
  );
  assertEquals(err.code, "FAILED_PRECONDITION");
  assert(err.message.includes("extra_field"), err.message);
});

Deno.test("expand() rejects an unknown macro, a clashing field and a cell that is not running", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("cell-a", macroService(addFieldMacro), noServe);
  const other = proteinMacro("other_macro", { fields: { x: t.bool() } });
  const input = protein("MyStruct", { name: t.string() });
  const unknown = await assertRejects(() => expand("cell-a", other, input), CellError);
  assertEquals(unknown.code, "NOT_FOUND");
  assert(unknown.message.includes("'add_field_macro'"), unknown.message);

  const clashing = protein("MyStruct", { extra_field: t.string() });
  const clash = await assertRejects(() => expand("cell-a", addFieldMacro, clashing), CellError);
  assertEquals(clash.code, "INVALID_ARGUMENT");
  await using client = await connect<MacroService>("cell-a");
  const input2 = {
    protein: { name: "S", fields: [{ name: "extra_field", type: { kind: "u8" } }] },
  };
  const served = await assertRejects(
    () => client.expand({ macro: "add_field_macro", input: JSON.stringify(input2) }),
    CellError,
  );
  assertEquals(served.code, "INVALID_ARGUMENT");
  assert(served.message.includes("'extra_field'"), served.message);

  const down = await assertRejects(() => expand("no-such-cell", addFieldMacro, input), CellError);
  assertEquals(down.code, "UNAVAILABLE");
  assert(down.message.includes("no-such-cell"), down.message);
});

Deno.test("expandFiles() writes a codegen macro's files and refuses to overwrite them", async () => {
  await using _home = await tempCellHome();
  const names = codegenMacro("field_names", (input, ir) => ({
    files: [{
      path: `out/${input.name}.txt`,
      contents: `${ir.proteins.length}:${input.fields.length}`,
    }],
  }));
  await using _server = await serve("gen", macroService(names), noServe);
  const output = await Deno.makeTempDir();
  try {
    const User = protein("User", { id: t.u64(), name: t.string() });
    const paths = await expandFiles("gen", names, User, { output });
    assertEquals(paths, [`${output}/out/User.txt`]);
    assertEquals(await Deno.readTextFile(`${output}/out/User.txt`), "1:2");
    const exists = await assertRejects(
      () => expandFiles("gen", names, User, { output }),
      CellError,
    );
    assertEquals(exists.code, "ALREADY_EXISTS");
    await expandFiles("gen", names, User, { output, force: true });
  } finally {
    await Deno.remove(output, { recursive: true });
  }
});

Deno.test("withMacros() serves macros beside a service's own methods", async () => {
  await using _home = await tempCellHome();
  const impl = Greeter.implement({ greet: ({ name }) => ({ greeting: name }) });
  await using _server = await serve("both", withMacros(impl, addFieldMacro), noServe);
  await using client = await connect<MacroService & typeof Greeter>("both");
  assertEquals((await client.macros({})).macros.map((m) => m.name), ["add_field_macro"]);
  const MyStruct = await expand("both", addFieldMacro, protein("MyStruct", { name: t.string() }));
  assert(MyStruct.check({ name: "a", extra_field: 2 }));
});
