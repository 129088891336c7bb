import assert from "node:assert/strict";
import type { CellSchema } from "@cell/sdk";
import { parseSchema, SchemaIndex } from "./_ir.ts";

const schema = (proteins: CellSchema["proteins"], methods: CellSchema["methods"] = []) => ({
  cell: "c",
  protocol: 1,
  hash: "sha256:00",
  methods,
  proteins,
});

Deno.test("proteinsInDependencyOrder() puts referenced proteins first and survives cycles", () => {
  const index = new SchemaIndex(schema([
    {
      name: "A",
      fields: [{
        name: "b",
        type: { kind: "list", items: { kind: "ref", name: "B" } },
        optional: false,
      }],
    },
    {
      name: "B",
      fields: [{
        name: "c",
        type: { kind: "map", values: { kind: "ref", name: "C" } },
        optional: true,
      }],
    },
    { name: "C", fields: [{ name: "a", type: { kind: "ref", name: "A" }, optional: true }] },
    { name: "D", fields: [] },
  ]));
  assert.deepEqual(index.proteinsInDependencyOrder().map((p) => p.name), ["C", "B", "A", "D"]);
});

Deno.test("fieldType() resolves references and wraps optional fields", () => {
  const s = schema([
    { name: "A", fields: [{ name: "x", type: { kind: "u8" }, optional: true }] },
    { name: "B", fields: [{ name: "a", type: { kind: "ref", name: "A" }, optional: false }] },
  ]);
  const index = new SchemaIndex(s);
  const [a, b] = s.proteins;
  assert.deepEqual(index.fieldType(a!, a!.fields[0]!), {
    kind: "optional",
    inner: { kind: "scalar", scalar: "u8" },
  });
  const ref = index.fieldType(b!, b!.fields[0]!);
  assert.equal(ref.kind === "ref" && ref.protein, a);
});

Deno.test("parseSchema() names dangling references, unknown kinds and missing keys", () => {
  assert.throws(
    () =>
      parseSchema(
        schema([{
          name: "A",
          fields: [{ name: "x", type: { kind: "ref", name: "Nope" }, optional: false }],
        }]),
      ),
    /protein 'Nope' at A\.x/,
  );
  assert.throws(
    () =>
      parseSchema(
        schema([{
          name: "A",
          fields: [{ name: "x", type: { kind: "u128" } as never, optional: false }],
        }]),
      ),
    /Unknown type kind 'u128' at A\.x/,
  );
  assert.throws(
    () => parseSchema(schema([], [{ name: "m", request: "Q", response: "R", idempotent: false }])),
    /protein 'Q' at method m/,
  );
  assert.throws(() => parseSchema({ cell: "c" }), /'protocol' must be a number/);
  assert.throws(() => parseSchema([]), /expected an object/);
});
