import assert from "node:assert/strict";
import { camelCase, pascalCase, quote, safeName, snakeCase, words } from "./_names.ts";

Deno.test("words() splits on separators, case changes and acronyms", () => {
  assert.deepEqual(words("getHTTPResponse2x"), ["get", "http", "response2x"]);
  assert.deepEqual(words("my-service.v2"), ["my", "service", "v2"]);
  assert.deepEqual(words("__dunder__"), ["dunder"]);
  assert.deepEqual(words(""), []);
});

Deno.test("snakeCase(), camelCase() and pascalCase() agree on every spelling of a name", () => {
  for (const name of ["my_service", "my-service", "myService", "MyService", "MY_SERVICE"]) {
    assert.equal(snakeCase(name), "my_service", name);
    assert.equal(camelCase(name), "myService", name);
    assert.equal(pascalCase(name), "MyService", name);
  }
});

Deno.test("safeName() renames keywords with a '_' suffix", () => {
  const python = new Set(["type", "class", "None", "def", "from", "import", "async", "await"]);
  for (const k of ["type", "class", "def", "from", "import", "async", "await"]) {
    assert.equal(safeName(k, python, "snake"), `${k}_`);
  }
  assert.equal(safeName("none", python, "pascal"), "None_");
  assert.equal(safeName("type_", new Set(["type", "type_"]), "snake"), "type__");
});

Deno.test("safeName() numbers collisions deterministically, in the order names come", () => {
  const taken = new Set<string>();
  const names = ["fooBar", "foo_bar", "foo-bar", "FooBar"].map((n) =>
    safeName(n, new Set(), "snake", taken)
  );
  assert.deepEqual(names, ["foo_bar", "foo_bar_2", "foo_bar_3", "foo_bar_4"]);
  assert.equal(safeName("x", new Set(["x_2"]), "snake", new Set(["x"])), "x_3");
});

Deno.test("safeName() makes identifiers of names with leading digits or no letters", () => {
  assert.equal(safeName("1st", new Set(), "snake"), "_1st");
  assert.equal(safeName("---", new Set(), "camel"), "_");
});

Deno.test("quote() escapes quotes, backslashes and line separators", () => {
  assert.equal(quote('a"b\\c\u2028'), '"a\\"b\\\\c\\u2028"');
});
