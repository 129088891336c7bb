// Compiled MessagePack writers and readers for proteins. The writer reads the declared fields by
// name and writes them behind pre-encoded keys, instead of the general writer's walk over
// `Object.keys`; the reader checks those keys byte for byte and builds one object shape.
//
// Measured with the greet call between two processes over the shared-memory ring, encoding
// was the largest part of a call's software (the general writer dispatches on every value's
// type, lists the object's keys and encodes each key's characters on every call).
//
// What travels is a protein's declared fields that are not `undefined`, in declaration order:
// an undeclared property of the object is not sent (as with protobuf's generated code). Each
// value is written exactly as the general writer writes it, so a value of the wrong type still
// travels as it is and is refused by the receiver's check, not here.
import {
  cursor,
  encodeMsgpack,
  readShortStringAt,
  readValueAt,
  writeStringAt,
  writeValueAt,
} from "./msgpack.ts";
import type { Protein } from "./protein.ts";

/**
 * Writes a payload into `target` at `p`, not beyond `end`; returns the position after it, or
 * -1 when it might not fit there.
 */
export type PayloadEncoder = (
  value: unknown,
  target: Uint8Array,
  p: number,
  end: number,
) => number;

/** The general writer as a {@linkcode PayloadEncoder}: any value, every own enumerable key. */
export const writeAnyPayload: PayloadEncoder = (value, target, p, end) =>
  writeValueAt(target, p, end, value);

/**
 * Reads a payload from `source[p..end)`: returns it and sets `cursor.at` after it, or returns
 * {@linkcode NO_MATCH} when the bytes are not in the form it was made for (then decode them
 * with the general reader, which also gives the error for malformed input).
 */
export type PayloadDecoder = (source: Uint8Array, p: number, end: number) => unknown;

/** What a {@linkcode PayloadDecoder} returns for bytes it does not read. */
export const NO_MATCH: unique symbol = Symbol("no match");

const compiled = new WeakMap<object, PayloadEncoder>();
const compiledDecoders = new WeakMap<object, PayloadDecoder>();

/**
 * The compiled decoder of `protein`'s values: reads a map of every declared field in
 * declaration order (what {@linkcode payloadEncoder} writes when no field is `undefined`) into
 * an object of one shape; anything else is left to the general reader.
 */
export function payloadDecoder(protein: Protein): PayloadDecoder {
  return once(compiledDecoders, protein, compileDecoder);
}

/** `compile(protein)`, made once per protein and kept in `cache`. */
function once<T>(cache: WeakMap<object, T>, protein: Protein, compile: (p: Protein) => T): T {
  let made = cache.get(protein);
  if (made === undefined) {
    made = compile(protein);
    cache.set(protein, made);
  }
  return made;
}

const noMatch: PayloadDecoder = () => NO_MATCH;

function compileDecoder(protein: Protein): PayloadDecoder {
  const fields = Object.entries(protein.schema.properties);
  const names = fields.map(([name]) => name);
  if (names.length > 15) return noMatch;
  const lines: string[] = [
    `if (p >= end || b[p] !== ${0x80 | names.length}) return NO_MATCH;`,
    "p++;",
  ];
  fields.forEach(([name, schema], i) => {
    const key = [...encodeMsgpack(name)];
    const at = `p + ${key.length}`;
    const compare = key.map((byte, j) => ` || b[p + ${j}] !== ${byte}`).join("");
    lines.push(
      `if (${at} >= end${compare}) return NO_MATCH;`,
      (schema as { type?: unknown }).type === "string"
        ? `const x${i} = readShortStringAt(b, ${at}, end) ?? readValueAt(b, ${at}, end);`
        : `const x${i} = readValueAt(b, ${at}, end);`,
      "p = cursor.at;",
    );
  });
  lines.push(
    "cursor.at = p;",
    `return { ${names.map((name, i) => `${name}: x${i}`).join(", ")} };`,
  );
  const make = new Function(
    "readShortStringAt",
    "readValueAt",
    "cursor",
    "NO_MATCH",
    `return function decode${protein.name}(b, p, end) {\n  ${lines.join("\n  ")}\n};`,
  );
  return make(readShortStringAt, readValueAt, cursor, NO_MATCH) as PayloadDecoder;
}

/** The compiled encoder of `protein`'s values (made once per protein). */
export function payloadEncoder(protein: Protein): PayloadEncoder {
  return once(compiled, protein, compile);
}

/** Names that a plain object inherits: read as own properties only. */
const INHERITED = new Set(Object.getOwnPropertyNames(Object.prototype));

function compile(protein: Protein): PayloadEncoder {
  const fields = Object.entries(protein.schema.properties);
  // The map header is one byte (a fixmap) up to 15 fields; more go by the general writer.
  if (fields.length > 15) return writeAnyPayload;
  const lines: string[] = [
    "if (typeof value !== 'object' || value === null) return writeValueAt(b, p, end, value);",
    "const proto = Object.getPrototypeOf(value);",
    "if (proto !== Object.prototype && proto !== null) return writeValueAt(b, p, end, value);",
    "const h = p++;",
    "let n = 0;",
    "let x;",
  ];
  for (const [name, schema] of fields) {
    // Names are identifiers (protein() checks them), so they are safe in the source below.
    const key = [...encodeMsgpack(name)];
    const read = INHERITED.has(name)
      ? `x = Object.hasOwn(value, "${name}") ? value.${name} : undefined;`
      : `x = value.${name};`;
    const type = (schema as { type?: unknown }).type;
    const writeValue = type === "string"
      ? "p = typeof x === 'string' ? writeStringAt(b, p, end, x) : writeValueAt(b, p, end, x);"
      : "p = writeValueAt(b, p, end, x);";
    lines.push(
      read,
      "if (x !== undefined) {",
      `  if (p + ${key.length} > end) return -1;`,
      ...key.map((byte, i) => `  b[p + ${i}] = ${byte};`),
      `  p += ${key.length};`,
      `  ${writeValue}`,
      "  if (p < 0) return -1;",
      "  n++;",
      "}",
    );
  }
  lines.push("b[h] = 0x80 | n;", "return p;");
  const make = new Function(
    "writeValueAt",
    "writeStringAt",
    `return function encode${protein.name}(value, b, p, end) {\n` +
      `  if (p >= end) return -1;\n  ${lines.join("\n  ")}\n};`,
  );
  return make(writeValueAt, writeStringAt) as PayloadEncoder;
}
