/**
 * Name conversion shared by the generators: split any IR name into words, join them in a
 * language's style, and make the result a legal, unique identifier.
 *
 * @module
 */

/** How a generated identifier is spelled. */
export type NameStyle = "snake" | "camel" | "pascal" | "screaming";

/**
 * The words of a name: splits on non-alphanumerics and on case changes (`getHTTPResponse2x` →
 * `get`, `http`, `response2x`). Words are lower case.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { words } from "./_names.ts";
 * assert.ok(words("getHTTPResponse").join(",") === "get,http,response");
 * assert.ok(words("my-service.v2").join(",") === "my,service,v2");
 * ```
 */
export function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w !== "")
    .map((w) => w.toLowerCase());
}

const upperFirst = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);

/**
 * `my_service` from `MyService`, `my-service` or `myService`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { snakeCase } from "./_names.ts";
 * assert.ok(snakeCase("MyService") === "my_service");
 * ```
 */
export function snakeCase(name: string): string {
  return words(name).join("_");
}

/**
 * `myService` from `my_service`, `my-service` or `MyService`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { camelCase } from "./_names.ts";
 * assert.ok(camelCase("my_service") === "myService");
 * ```
 */
export function camelCase(name: string): string {
  const [first = "", ...rest] = words(name);
  return first + rest.map(upperFirst).join("");
}

/**
 * `MyService` from `my_service`, `my-service` or `myService`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pascalCase } from "./_names.ts";
 * assert.ok(pascalCase("my-service") === "MyService");
 * ```
 */
export function pascalCase(name: string): string {
  return words(name).map(upperFirst).join("");
}

/**
 * `name` spelled in `style`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { styled } from "./_names.ts";
 * assert.ok(styled("fooBar", "screaming") === "FOO_BAR");
 * ```
 */
export function styled(name: string, style: NameStyle): string {
  switch (style) {
    case "snake":
      return snakeCase(name);
    case "camel":
      return camelCase(name);
    case "pascal":
      return pascalCase(name);
    case "screaming":
      return snakeCase(name).toUpperCase();
  }
}

/**
 * `name` spelled in `style` and made a legal identifier that is neither in `keywords` nor in
 * `taken`: a keyword gets a `_` suffix (`type` → `type_`), a leading digit a `_` prefix, an empty
 * name becomes `_`, and a name already in `taken` gets `_2`, `_3`, ... The result is added to
 * `taken`. Deterministic: the same inputs in the same order give the same names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { safeName } from "./_names.ts";
 * const python = new Set(["class", "type", "None"]);
 * assert.ok(safeName("type", python, "snake") === "type_");
 * const taken = new Set<string>();
 * assert.ok(safeName("fooBar", python, "snake", taken) === "foo_bar");
 * assert.ok(safeName("foo_bar", python, "snake", taken) === "foo_bar_2");
 * ```
 */
export function safeName(
  name: string,
  keywords: ReadonlySet<string>,
  style: NameStyle,
  taken?: Set<string>,
): string {
  let base = styled(name, style);
  if (base === "") base = "_";
  if (/^[0-9]/.test(base)) base = `_${base}`;
  while (keywords.has(base)) base = `${base}_`;
  let candidate = base;
  for (let n = 2; taken?.has(candidate) || keywords.has(candidate); n++) {
    candidate = `${base}_${n}`;
  }
  taken?.add(candidate);
  return candidate;
}

/**
 * A string literal for `value` in languages with C-like escapes (TypeScript, Python, Go, Rust):
 * JSON's string syntax, which all of them accept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quote } from "./_names.ts";
 * assert.ok(quote('say "hi"') === '"say \\"hi\\""');
 * ```
 */
export function quote(value: string): string {
  return JSON.stringify(value).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}
