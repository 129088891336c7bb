import assert from "node:assert/strict";
import { UsageError } from "./_common.ts";
import { parsePayload } from "./payload.ts";

function mistake(text: string): UsageError {
  try {
    parsePayload(text);
  } catch (e) {
    assert.ok(e instanceof UsageError);
    return e;
  }
  assert.fail(`${JSON.stringify(text)} parsed`);
}

Deno.test("parsePayload() reads a JSON object and treats blank text as {}", () => {
  assert.deepEqual(parsePayload('{"name":"World","n":[1,2.5,-3e2],"ok":true,"x":null}'), {
    name: "World",
    n: [1, 2.5, -300],
    ok: true,
    x: null,
  });
  assert.deepEqual(parsePayload("  \n"), {});
});

Deno.test("parsePayload() turns {$bytes} into bytes, in base64 or base64url", () => {
  const value = parsePayload('{"a":{"$bytes":"AQL6"},"b":[{"$bytes":"-_8"}]}') as {
    a: Uint8Array;
    b: Uint8Array[];
  };
  assert.deepEqual(value.a, new Uint8Array([1, 2, 250]));
  assert.deepEqual(value.b[0], new Uint8Array([251, 255]));
  assert.match(
    mistake('{"a":{"$bytes":"!!"}}').message,
    /"!!" in \{"\$bytes": \.\.\.\} is not base64/,
  );
  assert.deepEqual(parsePayload('{"a":{"$bytes":"AQ","x":1}}'), { a: { $bytes: "AQ", x: 1 } });
});

Deno.test("parsePayload() points at the line and column of a JSON mistake", () => {
  const cases: [string, string][] = [
    ['{name:"World"}', "line 1, column 2"],
    ['{"name":World}', "line 1, column 9"],
    ['{"name":"World"', "line 1, column 16"],
    ['{"name":"World",}', "line 1, column 17"],
    ['{"a":1} x', "line 1, column 9"],
    ['{"a":[1,2,]}', "line 1, column 11"],
    ['{\n  "a": 1\n  "b": 2\n}', "line 3, column 3"],
    ['{"a":"\\q"}', "line 1, column 8"],
    ['{"a":01}', "line 1, column 7"],
  ];
  for (const [text, where] of cases) {
    const error = mistake(text);
    assert.ok(error.message.includes(where), `${text}: ${error.message}`);
    assert.ok(error.hints.some((h) => h.startsWith("example: cell call")), text);
  }
});

Deno.test("parsePayload() draws a caret under the mistake, cutting long lines", () => {
  const error = mistake('{"name":World}');
  assert.deepEqual(error.hints.slice(0, 2), ['  {"name":World}', "          ^"]);
  const long = `{"a":"${"x".repeat(100)}", oops}`;
  const [excerpt, caret] = mistake(long).hints;
  assert.ok(excerpt!.length <= 2 + 62, excerpt);
  assert.equal(excerpt![caret!.length], "o", `${excerpt}\n${caret}`);
});

Deno.test("parsePayload() refuses JSON that is not an object", () => {
  assert.match(mistake("[1]").message, /must be a JSON object, not an array/);
  assert.match(mistake('"hi"').message, /must be a JSON object, not "hi"/);
  assert.match(mistake("42").message, /not 42/);
});
