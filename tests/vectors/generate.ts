/**
 * Writes the wire test vectors of this directory from the definitions in `_msgpack_vectors.ts`,
 * `_frame_vectors.ts` and `_malformed_vectors.ts`, using the SDK's own encoder for every byte it
 * can produce. The JSON files are the source of truth: regenerate only
 * to add or change vectors, and review the diff byte by byte against `docs/protocol.md` and the
 * MessagePack specification before committing it.
 *
 * ```sh
 * deno run -A tests/vectors/generate.ts
 * ```
 *
 * @module
 */
import { encode } from "../../sdk/codec.ts";
import { encodeFrame, FRAME_HEADER_BYTES } from "../../sdk/protocol.ts";
import { FRAMES, IGNORED } from "./_frame_vectors.ts";
import { MALFORMED } from "./_malformed_vectors.ts";
import { MSGPACK } from "./_msgpack_vectors.ts";
import {
  type Definition,
  frameFromMeaning,
  fromMeaning,
  hasIntegralFloat,
  toHex,
  type Vector,
} from "./_meaning.ts";

function framed(body: Uint8Array): string {
  const prefix = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(prefix.buffer).setUint32(0, body.length);
  return toHex(prefix) + toHex(body);
}

function finish(def: Definition, hex: string): Vector {
  const { name, meaning, note, decode_only, alt_hex, max_frame, expect, call_id } = def;
  const v: Vector = { name, hex, meaning };
  if (alt_hex !== undefined) v.alt_hex = alt_hex;
  if (expect !== undefined) v.expect = expect;
  if (call_id !== undefined) v.call_id = call_id;
  if (max_frame !== undefined) v.max_frame = max_frame;
  if (decode_only) v.decode_only = true;
  if (note !== undefined) v.note = note;
  return v;
}

function msgpackHex(d: Definition): string {
  if (d.hex !== undefined) return d.hex;
  if (hasIntegralFloat(d.meaning)) {
    throw new TypeError(`Vector '${d.name}' holds an integral $float: write its hex by hand`);
  }
  return toHex(encode(fromMeaning(d.meaning)));
}
const frameHex = (d: Definition) =>
  d.hex ??
    (d.body !== undefined
      ? framed(encode(fromMeaning(d.body)))
      : toHex(encodeFrame(frameFromMeaning(d.meaning))));
const bodyHex = (d: Definition) => d.hex ?? framed(encode(fromMeaning(d.body ?? d.meaning)));

const FILES: Record<string, Vector[]> = {
  "msgpack.json": MSGPACK.map((d) => finish(d, msgpackHex(d))),
  "frames.json": FRAMES.map((d) => finish(d, frameHex(d))),
  "ignored.json": IGNORED.map((d) => finish({ ...d, expect: "ignore" }, bodyHex(d))),
  "malformed.json": MALFORMED.map((d) =>
    finish({ expect: "malformed", ...d }, d.hex ?? bodyHex(d))
  ),
};

if (import.meta.main) {
  const dir = new URL(".", import.meta.url);
  const paths = Object.entries(FILES).map(([file, vectors]) => {
    const path = new URL(file, dir).pathname;
    Deno.writeTextFileSync(path, JSON.stringify(vectors, null, 2) + "\n");
    return path;
  });
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", ...paths] }).output();
  if (!fmt.success) throw new Error(new TextDecoder().decode(fmt.stderr));
  console.log(`Wrote ${paths.length} files: review the diff before committing it`);
}
