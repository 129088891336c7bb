/**
 * The JSON payloads of `cell call`: parsed with a message that points at the mistake, with
 * `{"$bytes": "<base64>"}` standing for a `bytes` field.
 *
 * @module
 */
import { UsageError } from "./_common.ts";

/**
 * Parses the payload of a call: a JSON object, in which every `{"$bytes": "<base64>"}` becomes a
 * `Uint8Array`. Blank text is `{}`. Throws a usage error (exit code 2) that says where the JSON
 * is wrong and shows one that works.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePayload } from "@cell/cli";
 * const payload = parsePayload('{"name":"World","avatar":{"$bytes":"AQID"}}') as {
 *   avatar: Uint8Array;
 * };
 * assert.ok(payload.avatar.length === 3);
 * ```
 */
export function parsePayload(text: string, example = "cell call my-service greet"): unknown {
  if (text.trim() === "") return {};
  const hints = [
    `example: ${example} '{"name":"World"}'`,
    "(in a shell, wrap the JSON in single quotes so that its double quotes survive)",
  ];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message
      .replace(/, ".*" is not valid JSON$/s, "")
      .replace(/ in JSON at position \d+.*$/s, "")
      .replace(/ after JSON at position \d+.*$/s, " after the JSON value");
    const offset = errorOffset(text);
    const { line, column, excerpt, caret } = locate(text, offset);
    throw new UsageError(
      `The payload is not valid JSON: ${message} at line ${line}, column ${column}`,
      [`  ${excerpt}`, `  ${caret}^`, ...hints],
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(
      `The payload must be a JSON object, not ${Array.isArray(value) ? "an array" : text.trim()}`,
      hints,
    );
  }
  return fromJson(value);
}

/** Replaces every `{"$bytes": "<base64>"}` in a parsed value with its bytes. */
function fromJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value);
  if (entries.length === 1 && entries[0]![0] === "$bytes") {
    const text = entries[0]![1];
    try {
      if (typeof text !== "string") throw new TypeError("not a string");
      const alphabet = /[-_]/.test(text) ? "base64url" : "base64";
      return Uint8Array.fromBase64(text, { alphabet });
    } catch {
      throw new UsageError(
        `${JSON.stringify(text)} in {"$bytes": ...} is not base64`,
        ['example: {"$bytes":"aGVsbG8="} is the 5 bytes of "hello"'],
      );
    }
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, fromJson(v)]));
}

/** Marks where a JSON text stops being JSON. */
class At {
  constructor(readonly offset: number) {}
}

/** The offset of the first character at which `text` is not JSON (its length if it ends early). */
function errorOffset(text: string): number {
  let i = 0;
  const fail = (): never => {
    throw new At(i);
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const string = () => {
    i++;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') return void i++;
      if (c < " ") fail();
      if (c === "\\") {
        i++;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? "x")) fail();
      }
      i++;
    }
    fail();
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const container = (close: string, item: () => void) => {
    i++;
    space();
    if (text[i] === close) return void i++;
    for (;;) {
      item();
      space();
      if (text[i] === ",") i++;
      else if (text[i] === close) return void i++;
      else fail();
    }
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === "{") {
      return container("}", () => {
        space();
        if (text[i] !== '"') fail();
        string();
        space();
        if (text[i] !== ":") fail();
        i++;
        value();
      });
    }
    if (c === "[") return container("]", value);
    if (c === '"') return string();
    NUMBER.lastIndex = i;
    const number = NUMBER.exec(text);
    if (number) return void (i += number[0].length);
    for (const word of ["true", "false", "null"]) {
      if (text.startsWith(word, i)) return void (i += word.length);
    }
    fail();
  };
  try {
    value();
    space();
    return i < text.length ? i : text.length;
  } catch (e) {
    if (e instanceof At) return e.offset;
    throw e;
  }
}

/** Line and column (from 1) of `offset`, and the text around it with the caret's indentation. */
function locate(text: string, offset: number) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const start = before.lastIndexOf("\n") + 1;
  const end = text.indexOf("\n", offset);
  const whole = text.slice(start, end === -1 ? text.length : end);
  const column = offset - start + 1;
  // Long lines are cut to 60 characters around the mistake.
  const from = Math.max(0, Math.min(column - 1 - 30, whole.length - 60));
  const cut = whole.slice(from, from + 60);
  const excerpt = `${from > 0 ? "…" : ""}${cut}${from + 60 < whole.length ? "…" : ""}`;
  const caret = " ".repeat(column - 1 - from + (from > 0 ? 1 : 0));
  return { line, column, excerpt, caret };
}
