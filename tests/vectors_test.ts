/**
 * Checks `sdk/codec.ts` and `sdk/protocol.ts` against every wire test vector in `tests/vectors/`:
 * the bytes decode to the stated meaning or outcome, and the meaning encodes to exactly the bytes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { decode, encode } from "../sdk/codec.ts";
import { CellError } from "../sdk/errors.ts";
import {
  decodeFrameBody,
  DEFAULT_MAX_FRAME,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameReader,
  isMalformed,
} from "../sdk/protocol.ts";
import {
  frameFromMeaning,
  fromHex,
  fromMeaning,
  hasIntegralFloat,
  plain,
  toHex,
  type Vector,
  VECTOR_FILES,
} from "./vectors/_meaning.ts";

const DIR = new URL("./vectors/", import.meta.url);

function load(file: string): Vector[] {
  return JSON.parse(Deno.readTextFileSync(new URL(file, DIR)));
}

/** Writes `bytes` into a fresh reader and returns every body it yields (or throws what it throws). */
function readAll(bytes: Uint8Array, maxFrame = DEFAULT_MAX_FRAME): Uint8Array[] {
  const reader = new FrameReader(maxFrame);
  reader.writable(bytes.length).set(bytes);
  reader.commit(bytes.length);
  const bodies: Uint8Array[] = [];
  for (let body = reader.next(); body !== null; body = reader.next()) bodies.push(body.slice());
  assert.equal(reader.buffered, 0, "bytes were left over after the last frame");
  return bodies;
}

/** The one frame body in `hex`. */
function bodyOf(v: Vector): Uint8Array {
  const bodies = readAll(fromHex(v.hex), v.max_frame);
  assert.equal(bodies.length, 1, "a vector holds exactly one frame");
  return bodies[0]!;
}

const framed = (body: Uint8Array) => {
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
};

const KNOWN_FIELDS = new Set([
  "name",
  "hex",
  "meaning",
  "note",
  "decode_only",
  "alt_hex",
  "max_frame",
  "expect",
  "call_id",
]);

Deno.test("the vector directory holds exactly the listed vector files", () => {
  const found = [...Deno.readDirSync(DIR)]
    .map((e) => e.name)
    .filter((n) => n.endsWith(".json"))
    .sort();
  assert.deepEqual(found, [...VECTOR_FILES].sort());
});

for (const file of VECTOR_FILES) {
  Deno.test(`every vector in ${file} has a unique name, lowercase hex and only known fields`, () => {
    const vectors = load(file);
    assert.ok(vectors.length > 0);
    const names = new Set<string>();
    for (const v of vectors) {
      assert.ok(!names.has(v.name), `duplicate name '${v.name}'`);
      names.add(v.name);
      assert.match(v.hex, /^(?:[0-9a-f]{2})*$/, `hex of '${v.name}'`);
      if (v.alt_hex !== undefined) assert.match(v.alt_hex, /^d3[0-9a-f]{16}$/);
      assert.ok("meaning" in v, `'${v.name}' has no meaning`);
      for (const key of Object.keys(v)) assert.ok(KNOWN_FIELDS.has(key), `unknown field ${key}`);
    }
  });
}

for (const v of load("msgpack.json")) {
  Deno.test(`MessagePack vector "${v.name}" decodes to its meaning`, () => {
    assert.deepStrictEqual(plain(decode(fromHex(v.hex))), plain(fromMeaning(v.meaning)));
  });
  if (v.alt_hex !== undefined) {
    Deno.test(`MessagePack vector "${v.name}" decodes from its int64 form too`, () => {
      assert.deepStrictEqual(plain(decode(fromHex(v.alt_hex!))), plain(fromMeaning(v.meaning)));
    });
  }
  // An integral float can't be told from an integer in TypeScript, so it encodes as one.
  if (!v.decode_only && !hasIntegralFloat(v.meaning)) {
    Deno.test(`MessagePack vector "${v.name}" encodes to exactly its bytes`, () => {
      assert.equal(toHex(encode(fromMeaning(v.meaning))), v.hex);
    });
  }
}

for (const v of load("frames.json")) {
  Deno.test(`frame vector "${v.name}" decodes to its meaning`, () => {
    const frame = decodeFrameBody(bodyOf(v));
    assert.ok(frame !== null, "decoded as a frame to ignore");
    if (isMalformed(frame)) assert.fail(`decoded as malformed: ${frame.error.message}`);
    assert.deepStrictEqual(plain(frame), plain(frameFromMeaning(v.meaning)));
  });
  if (!v.decode_only) {
    Deno.test(`frame vector "${v.name}" encodes to exactly its bytes`, () => {
      assert.equal(toHex(encodeFrame(frameFromMeaning(v.meaning), v.max_frame)), v.hex);
    });
  }
  if (v.max_frame !== undefined) {
    Deno.test(`frame vector "${v.name}" is refused one byte under its max_frame`, () => {
      const limit = v.max_frame! - 1;
      const tooLarge = (e: unknown) => e instanceof CellError && e.code === "RESOURCE_EXHAUSTED";
      assert.throws(() => readAll(fromHex(v.hex), limit), tooLarge);
      assert.throws(() => encodeFrame(frameFromMeaning(v.meaning), limit), tooLarge);
    });
  }
}

for (const v of load("ignored.json")) {
  Deno.test(`unknown-kind vector "${v.name}" is read as a frame to ignore`, () => {
    const body = bodyOf(v);
    assert.deepStrictEqual(plain(decode(body)), plain(fromMeaning(v.meaning)));
    assert.equal(decodeFrameBody(body), null);
  });
  Deno.test(`unknown-kind vector "${v.name}" encodes to exactly its bytes`, () => {
    assert.equal(toHex(framed(encode(fromMeaning(v.meaning)))), v.hex);
  });
}

for (const v of load("malformed.json")) {
  const answer = v.call_id === undefined ? "the connection" : `call ${v.call_id}`;
  if (v.expect === "frame_too_large") {
    Deno.test(`malformed vector "${v.name}" is refused from its length prefix alone`, () => {
      const reader = new FrameReader(v.max_frame);
      const bytes = fromHex(v.hex);
      reader.writable(bytes.length).set(bytes);
      reader.commit(bytes.length);
      assert.throws(
        () => reader.next(),
        (e) => e instanceof CellError && e.code === "RESOURCE_EXHAUSTED",
      );
    });
  } else {
    Deno.test(`malformed vector "${v.name}" is reported as malformed for ${answer}`, () => {
      assert.equal(v.expect, "malformed");
      const result = decodeFrameBody(bodyOf(v));
      assert.ok(isMalformed(result), `decoded as ${Deno.inspect(result)}`);
      assert.ok(result.error instanceof CellError);
      assert.equal(result.error.code, "INVALID_ARGUMENT");
      assert.equal(result.id, v.call_id);
    });
  }
}
