/**
 * Conformance runner for generated TypeScript clients (see `tests/conformance/README.md`):
 *
 * ```sh
 * CELL_CONFORMANCE_CLIENT=DIR deno run -A tests/conformance/typescript/run.ts cases tests/conformance/cases.json
 * CELL_CONFORMANCE_CLIENT=DIR deno run -A tests/conformance/typescript/run.ts vectors tests/vectors
 * ```
 *
 * DIR holds `conformance.ts`, written by `cell generate conformance --language typescript`. The
 * module is imported at run time, so this file type-checks without it; `conformance_test.ts`
 * checks the generated file itself with `deno check`.
 *
 * @module
 */
import { realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { inspect } from "node:util";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface CellErrorLike extends Error {
  code: string;
}

/** What this runner uses of a generated client module. */
interface Generated {
  METHODS: Record<string, string>;
  SCHEMA_HASH: string;
  ConformanceClient: new (options?: Record<string, unknown>) => {
    connect(): Promise<void>;
    close(): Promise<void>;
    serverSchemaHash: string | undefined;
  } & Record<string, unknown>;
  CellClient: new (cell: string, hash: string, options?: Record<string, unknown>) => {
    connect(): Promise<void>;
    close(): Promise<void>;
  };
  CellError: new (...args: never[]) => CellErrorLike;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
  decodeFrame(body: Uint8Array): unknown;
  frameToArray(frame: unknown): unknown[];
  frameBytes(body: Uint8Array): Uint8Array;
  FrameReader: new (
    maxFrame?: number,
  ) => { push(b: Uint8Array): void; next(): Uint8Array | null; buffered: number };
  MalformedFrameError: new (...args: never[]) => Error & { callId: number };
  DEFAULT_MAX_FRAME: number;
}

interface Case {
  name: string;
  method: string;
  request: Json;
  expect: { response?: Json; error?: { code: string; message?: string } };
  timeout_ms?: number;
  cancel_after_ms?: number;
  max_elapsed_ms?: number;
}

let passed = 0;
let failed = 0;

function report(name: string, error: string | undefined): void {
  if (error === undefined) passed++;
  else failed++;
  console.log(JSON.stringify({ name, ok: error === undefined, ...(error ? { error } : {}) }));
}

const fromHex = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** A value in the JSON form of the vectors (plus `$pattern`) as a JavaScript value. */
function fromJson(v: Json): unknown {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v);
    if (entries.length === 1) {
      const [key, x] = entries[0]!;
      if (key === "$bytes") return fromHex(x as string);
      if (key === "$pattern") return Uint8Array.from({ length: x as number }, (_, i) => i % 251);
      if (key === "$int") return BigInt(x as string);
      if (key === "$float") return Number(x);
    }
    return Object.fromEntries(entries.map(([k, x]) => [k, fromJson(x)]));
  }
  return v;
}

/** Equality by value; `strict` also compares map key order and floats bit for bit (-0, NaN). */
function same(a: unknown, b: unknown, strict: boolean): boolean {
  if (
    (typeof a === "number" || typeof a === "bigint") &&
    (typeof b === "number" || typeof b === "bigint")
  ) {
    if (typeof a === "number" && typeof b === "number") return strict ? Object.is(a, b) : a === b;
    return BigInt(a) === BigInt(b);
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => same(x, b[i], strict));
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).filter((k) => strict || (a as Record<string, unknown>)[k] != null);
    const kb = Object.keys(b);
    if (strict ? ka.join("\0") !== kb.join("\0") : ka.sort().join("\0") !== kb.sort().join("\0")) {
      return false;
    }
    return kb.every((k) =>
      same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], strict)
    );
  }
  return a === b;
}

function short(v: unknown): string {
  const text = inspect(v, { depth: 4, maxArrayLength: 8, maxStringLength: 80 });
  return text.length < 300 ? text : `${text.slice(0, 300)}...`;
}

function judge(c: Case, result: unknown, error: unknown, elapsedMs: number): string | undefined {
  if (c.max_elapsed_ms !== undefined && elapsedMs > c.max_elapsed_ms) {
    return `took ${elapsedMs.toFixed(0)} ms, over ${c.max_elapsed_ms} ms`;
  }
  if (c.expect.response !== undefined) {
    if (error !== undefined) return `expected a response, got ${error}`;
    const want = fromJson(c.expect.response);
    return same(result, want, false) ? undefined : `expected ${short(want)}, got ${short(result)}`;
  }
  const want = c.expect.error!;
  if (error === undefined) return `expected ${want.code}, got the response ${short(result)}`;
  const { code, message } = error as CellErrorLike;
  if (code !== want.code) return `expected ${want.code}, got ${code}: ${message}`;
  if (want.message !== undefined && message !== want.message) {
    return `expected the message ${JSON.stringify(want.message)}, got ${JSON.stringify(message)}`;
  }
  return undefined;
}

async function runCases(gen: Generated, cases: Case[]): Promise<void> {
  const client = new gen.ConformanceClient();
  await client.connect();
  for (const c of cases) {
    const method = client[gen.METHODS[c.method]!] as (r: unknown, o: unknown) => Promise<unknown>;
    const controller = new AbortController();
    const options = {
      ...(c.timeout_ms === undefined ? {} : { timeoutMs: c.timeout_ms }),
      signal: controller.signal,
    };
    if (c.cancel_after_ms !== undefined) setTimeout(() => controller.abort(), c.cancel_after_ms);
    const start = performance.now();
    let result: unknown;
    let error: unknown;
    try {
      result = await method.call(client, fromJson(c.request), options);
    } catch (e) {
      if (!(e instanceof gen.CellError)) throw e;
      error = e;
    }
    report(c.name, judge(c, result, error, performance.now() - start));
  }
  report(
    "schema: the cell announces the hash the client was generated for",
    client.serverSchemaHash === gen.SCHEMA_HASH ? undefined : `got ${client.serverSchemaHash}`,
  );
  await client.close();
  const strict = new gen.CellClient("conformance", "sha256:other", { strictSchema: true });
  let code: string | undefined;
  try {
    await strict.connect();
  } catch (e) {
    code = (e as CellErrorLike).code;
  }
  await strict.close();
  report(
    "schema: a strict client of another schema fails with FAILED_PRECONDITION",
    code === "FAILED_PRECONDITION" ? undefined : `got ${code ?? "a connection"}`,
  );
}

interface Vector {
  name: string;
  hex: string;
  meaning: Json;
  decode_only?: boolean;
  alt_hex?: string;
  max_frame?: number;
  expect?: string;
  call_id?: number;
}

/** Integral floats read as integers in JavaScript: their encoding check is skipped. */
function hasIntegralFloat(v: Json): boolean {
  if (Array.isArray(v)) return v.some(hasIntegralFloat);
  if (v !== null && typeof v === "object") {
    const f = v.$float;
    if (typeof f === "string" && Object.keys(v).length === 1) {
      const n = Number(f);
      return Number.isInteger(n) && Math.abs(n) <= 2 ** 53;
    }
    return Object.values(v).some(hasIntegralFloat);
  }
  return false;
}

function checkVector(gen: Generated, group: string, v: Vector): string | undefined {
  const bytes = fromHex(v.hex);
  if (group === "msgpack.json") {
    for (const hex of [v.hex, ...(v.alt_hex ? [v.alt_hex] : [])]) {
      const value = gen.decode(fromHex(hex));
      if (!same(value, fromJson(v.meaning), true)) return `decoded ${short(value)}`;
    }
    if (!v.decode_only && !hasIntegralFloat(v.meaning)) {
      const encoded = toHex(gen.encode(fromJson(v.meaning)));
      if (encoded !== v.hex && encoded !== v.alt_hex) return `encoded ${encoded}`;
    }
    return undefined;
  }
  const maxFrame = v.max_frame ?? gen.DEFAULT_MAX_FRAME;
  const reader = new gen.FrameReader(maxFrame);
  reader.push(bytes);
  if (v.expect === "frame_too_large") {
    try {
      reader.next();
    } catch (e) {
      return (e as CellErrorLike).code === "RESOURCE_EXHAUSTED" ? undefined : String(e);
    }
    return "the reader accepted the length";
  }
  const body = reader.next();
  if (body === null || reader.buffered !== 0) return "the reader did not yield exactly one body";
  if (v.expect === "malformed") {
    try {
      gen.decodeFrame(body);
    } catch (e) {
      if (!(e instanceof gen.MalformedFrameError)) return `threw ${e}`;
      return e.callId === (v.call_id ?? 0)
        ? undefined
        : `call id ${e.callId}, expected ${v.call_id ?? 0}`;
    }
    return "the frame was accepted";
  }
  if (v.expect === "ignore") {
    if (gen.decodeFrame(body) !== null) return "an unknown kind was not ignored";
    const encoded = toHex(gen.frameBytes(gen.encode(fromJson(v.meaning))));
    return encoded === v.hex ? undefined : `encoded ${encoded}`;
  }
  const frame = gen.decodeFrame(body);
  if (!same(frame, fromJson(v.meaning), true)) return `decoded ${short(frame)}`;
  if (!v.decode_only && !hasIntegralFloat(v.meaning)) {
    const encoded = toHex(gen.frameBytes(gen.encode(gen.frameToArray(fromJson(v.meaning)))));
    if (encoded !== v.hex) return `encoded ${encoded}`;
  }
  if (v.max_frame !== undefined) {
    const stricter = new gen.FrameReader(v.max_frame - 1);
    stricter.push(bytes);
    try {
      stricter.next();
      return "a reader one byte stricter accepted it";
    } catch {
      // Refused, as it should be.
    }
  }
  return undefined;
}

async function runVectors(gen: Generated, dir: string): Promise<void> {
  for (const group of ["msgpack.json", "frames.json", "ignored.json", "malformed.json"]) {
    const vectors = JSON.parse(await readFile(join(dir, group), "utf8")) as Vector[];
    for (const v of vectors) {
      let error: string | undefined;
      try {
        error = checkVector(gen, group, v);
      } catch (e) {
        error = `threw ${e}`;
      }
      report(`${group}: ${v.name}`, error);
    }
  }
}

// Node (through tsx) has no import.meta.main: the file is only ever run, never imported.
if (import.meta.main !== false) {
  const [mode, path] = process.argv.slice(2);
  if ((mode !== "cases" && mode !== "vectors") || path === undefined) {
    console.error("usage: run.ts cases CASES.json | run.ts vectors VECTORS_DIR");
    process.exit(2);
  }
  const dir = process.env.CELL_CONFORMANCE_CLIENT ?? ".";
  const gen = await import(
    pathToFileURL(join(realpathSync(dir), "conformance.ts")).href
  ) as Generated;
  if (mode === "cases") {
    await runCases(gen, (JSON.parse(await readFile(path, "utf8")) as { cases: Case[] }).cases);
  } else {
    await runVectors(gen, path);
  }
  console.log(JSON.stringify({ summary: true, passed, failed }));
  process.exit(failed === 0 ? 0 : 1);
}
