// A MessagePack codec for exactly the data Cell carries: nil, booleans, integers up to 64 bits,
// float64, UTF-8 strings, binary, arrays and string-keyed maps.
//
// Why not a library: msgpackr and @msgpack/msgpack both write an integer-valued number beyond
// 32 bits as float64 (Go and Rust refuse that for a u64), both accept extension types and
// produce values (Dates, cyclic references, markers) a schema-checked RPC must not see, and
// msgpackr returns Node Buffers through Deno's compatibility layer. Measured on this project's
// machines, codec work on both sides was ~5 µs of a ~33 µs Unix-socket round trip with msgpackr,
// most of it cache-cold code after the process slept; this codec executes far less code.
//
// Encoding is canonical (the smallest form of every value), so our bytes equal the test
// vectors'; decoding accepts every valid form and refuses extension types, invalid UTF-8,
// lengths beyond the input, nesting deeper than MAX_DEPTH and trailing bytes.

/** Deepest nesting of arrays and maps either direction accepts (also stops cycles). */
export const MAX_DEPTH = 256;

const CHUNK = 64 * 1024;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

let buf: Uint8Array = new Uint8Array(CHUNK);
let view: DataView = new DataView(buf.buffer);
let pos = 0;
let start = 0;
/** End of the room being written: the chunk's end, or the caller's limit (see encodeTupleInto). */
let end = CHUNK;
/** True while encoding into a caller's buffer: running out of room throws `NO_ROOM`. */
let fixed = false;
/** Thrown (and caught) when a value does not fit the caller's buffer. */
const NO_ROOM = new RangeError("No room");

/** Makes room for `n` more bytes, moving the value being written to a fresh chunk if needed. */
function ensure(n: number): void {
  if (pos + n <= end) return;
  if (fixed) throw NO_ROOM;
  const written = pos - start;
  const next = new Uint8Array(Math.max(CHUNK, (written + n) * 2));
  next.set(buf.subarray(start, pos));
  buf = next;
  view = new DataView(buf.buffer);
  end = buf.length;
  start = 0;
  pos = written;
}

/**
 * Encodes `value` after `prefix` reserved bytes (for a length prefix the caller fills in).
 * The result is a view of a shared chunk that later calls never write over.
 */
export function encodeMsgpack(value: unknown, prefix = 0): Uint8Array {
  beginChunk(prefix);
  try {
    write(value, 0);
  } catch (e) {
    pos = start;
    throw e;
  }
  return endChunk();
}

function beginChunk(prefix: number): void {
  if (buf.length - pos < 1024) {
    buf = new Uint8Array(CHUNK);
    view = new DataView(buf.buffer);
    end = CHUNK;
    pos = 0;
  }
  start = pos;
  pos += prefix;
}

function endChunk(): Uint8Array {
  const out = buf.subarray(start, pos);
  // The next value starts on an 8-byte boundary: cheaper copies of it later.
  pos = (pos + 7) & ~7;
  return out;
}

/**
 * Encodes the array `[v0, ..., v{count-1}]` (`count` up to 6) like {@linkcode encodeMsgpack}
 * encodes that array, without the caller building it: the wire protocol's frames.
 */
export function encodeTuple(
  prefix: number,
  count: number,
  v0: unknown,
  v1: unknown,
  v2: unknown,
  v3: unknown,
  v4: unknown,
  v5: unknown,
): Uint8Array {
  beginChunk(prefix);
  try {
    writeTuple(count, v0, v1, v2, v3, v4, v5);
  } catch (e) {
    pos = start;
    throw e;
  }
  return endChunk();
}

let targetBytes: Uint8Array = new Uint8Array(0);
let targetView: DataView = new DataView(targetBytes.buffer);

/**
 * Like {@linkcode encodeTuple}, but straight into `target` from `offset`, using at most `room`
 * bytes: returns where the encoding ends, or -1 (nothing meaningful written) when it might not
 * fit. Encoding errors other than lack of room are thrown.
 */
export function encodeTupleInto(
  target: Uint8Array,
  offset: number,
  room: number,
  count: number,
  v0: unknown,
  v1: unknown,
  v2: unknown,
  v3: unknown,
  v4: unknown,
  v5: unknown,
): number {
  // The frames other than calls, rare: as an array of their fields.
  const fields = [v0, v1, v2, v3, v4, v5];
  fields.length = count;
  return writeGeneralAt(target, offset, offset + room, fields, 0);
}

/**
 * Runs `writeAt(chunk, p, end)` on at least `room` bytes of a chunk after `prefix` reserved
 * bytes, and returns what it wrote (a view that later calls never write over), or `undefined`
 * when it returned -1 (did not fit).
 */
export function encodeWith(
  prefix: number,
  room: number,
  writeAt: (target: Uint8Array, p: number, end: number) => number,
): Uint8Array | undefined {
  beginChunk(prefix);
  ensure(room);
  let written: number;
  try {
    written = writeAt(buf, pos, pos + room);
  } catch (e) {
    pos = start;
    throw e;
  }
  if (written < 0) {
    pos = start;
    return undefined;
  }
  pos = written;
  return endChunk();
}

/**
 * Writes `value` into `target` at `p`, not beyond `end`, exactly as {@linkcode encodeMsgpack}
 * would encode it; returns the position after it, or -1 when it might not fit. The in-place
 * writers below (`write*At`) are the frame encoder's fast path: local positions, no state of
 * this module touched unless a value needs the general writer.
 */
export function writeValueAt(target: Uint8Array, p: number, end: number, value: unknown): number {
  if (typeof value === "string") return writeStringAt(target, p, end, value);
  if (typeof value === "number" && (value >>> 0) === value && value < 0x80 && p < end) {
    target[p] = value;
    return p + 1;
  }
  return writeGeneralAt(target, p, end, value);
}

/** {@linkcode writeValueAt} by the general writer: any value, any size. */
function writeGeneralAt(
  target: Uint8Array,
  p: number,
  stop: number,
  value: unknown,
  depth = 1,
): number {
  if (target !== targetBytes) {
    targetBytes = target;
    targetView = new DataView(target.buffer, target.byteOffset, target.byteLength);
  }
  const savedBuf = buf, savedView = view, savedPos = pos, savedStart = start, savedEnd = end;
  buf = target;
  view = targetView;
  pos = start = p;
  end = Math.min(stop, target.length);
  fixed = true;
  try {
    write(value, depth);
    return pos;
  } catch (e) {
    if (e === NO_ROOM) return -1;
    throw e;
  } finally {
    fixed = false;
    buf = savedBuf;
    view = savedView;
    pos = savedPos;
    start = savedStart;
    end = savedEnd;
  }
}

/** Writes the string `s` at `p` (see {@linkcode writeValueAt}). */
export function writeStringAt(target: Uint8Array, p: number, end: number, s: string): number {
  const n = s.length;
  // Short ASCII, the usual key and value, by hand; anything else by the general writer.
  if (n < 32 && p + 1 + n <= end) {
    const first = p;
    target[p++] = 0xa0 | n;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return writeGeneralAt(target, first, end, s);
      target[p++] = c;
    }
    return p;
  }
  return writeGeneralAt(target, p, end, s);
}

/**
 * Writes `n`, an integer in [0, 2^32), at `p` in its smallest form; the caller has checked that
 * 5 bytes fit.
 */
export function writeUint32At(target: Uint8Array, p: number, n: number): number {
  if (n < 0x80) {
    target[p] = n;
    return p + 1;
  }
  if (n < 0x100) {
    target[p] = 0xcc;
    target[p + 1] = n;
    return p + 2;
  }
  if (n < 0x10000) {
    target[p] = 0xcd;
    target[p + 1] = n >>> 8;
    target[p + 2] = n & 0xff;
    return p + 3;
  }
  target[p] = 0xce;
  target[p + 1] = n >>> 24;
  target[p + 2] = (n >>> 16) & 0xff;
  target[p + 3] = (n >>> 8) & 0xff;
  target[p + 4] = n & 0xff;
  return p + 5;
}

function writeTuple(
  count: number,
  v0: unknown,
  v1: unknown,
  v2: unknown,
  v3: unknown,
  v4: unknown,
  v5: unknown,
): void {
  // As writeArray at depth 1: the elements of a top-level array.
  ensure(1);
  buf[pos++] = 0x90 | count;
  write(v0, 1);
  if (count > 1) write(v1, 1);
  if (count > 2) write(v2, 1);
  if (count > 3) write(v3, 1);
  if (count > 4) write(v4, 1);
  if (count > 5) write(v5, 1);
}

function write(value: unknown, depth: number): void {
  switch (typeof value) {
    case "string":
      return writeString(value);
    case "number":
      return writeNumber(value);
    case "boolean":
      ensure(1);
      buf[pos++] = value ? 0xc3 : 0xc2;
      return;
    case "bigint":
      return writeBigInt(value);
    case "undefined":
      ensure(1);
      buf[pos++] = 0xc0;
      return;
    case "object":
      if (value === null) {
        ensure(1);
        buf[pos++] = 0xc0;
        return;
      }
      if (depth >= MAX_DEPTH) {
        throw new RangeError(`Value nests deeper than ${MAX_DEPTH} levels (or refers to itself)`);
      }
      if (Array.isArray(value)) return writeArray(value, depth + 1);
      // The usual payload first: a plain object (none of the checks below can hold for it).
      if (Object.getPrototypeOf(value) === Object.prototype && !ArrayBuffer.isView(value)) {
        return writeObject(value as Record<string, unknown>, depth + 1);
      }
      if (value instanceof Uint8Array) return writeBin(value);
      if (value instanceof Map) return writeMapEntries([...value], depth + 1);
      if (ArrayBuffer.isView(value) || value instanceof Date || value instanceof Set) {
        throw new TypeError(
          `Cannot encode a ${value.constructor.name}: send a Uint8Array, a string or a number`,
        );
      }
      return writeObject(value as Record<string, unknown>, depth + 1);
    default:
      throw new TypeError(`Cannot encode a ${typeof value} as MessagePack`);
  }
}

function writeNumber(n: number): void {
  ensure(9);
  // Integers up to ±2^53 (the doubles that are exact integers) go out as integers; a larger
  // integral number may be a rounded float, so it stays a float64: bigints are the way to send
  // exact 64-bit integers.
  if (Number.isInteger(n) && n <= 2 ** 53 && n >= -(2 ** 53)) {
    if (n >= 0) {
      if (n < 0x80) {
        buf[pos++] = n;
      } else if (n < 0x100) {
        buf[pos++] = 0xcc;
        buf[pos++] = n;
      } else if (n < 0x10000) {
        buf[pos++] = 0xcd;
        view.setUint16(pos, n);
        pos += 2;
      } else if (n < 0x100000000) {
        buf[pos++] = 0xce;
        view.setUint32(pos, n);
        pos += 4;
      } else {
        buf[pos++] = 0xcf;
        view.setBigUint64(pos, BigInt(n));
        pos += 8;
      }
    } else if (n >= -0x20) {
      buf[pos++] = n & 0xff;
    } else if (n >= -0x80) {
      buf[pos++] = 0xd0;
      view.setInt8(pos++, n);
    } else if (n >= -0x8000) {
      buf[pos++] = 0xd1;
      view.setInt16(pos, n);
      pos += 2;
    } else if (n >= -0x80000000) {
      buf[pos++] = 0xd2;
      view.setInt32(pos, n);
      pos += 4;
    } else {
      buf[pos++] = 0xd3;
      view.setBigInt64(pos, BigInt(n));
      pos += 8;
    }
  } else {
    writeFloat(n);
  }
}

function writeFloat(n: number): void {
  buf[pos++] = 0xcb;
  view.setFloat64(pos, n);
  pos += 8;
}

function writeBigInt(n: bigint): void {
  if (n >= -(2n ** 63n) && n < 2n ** 64n) {
    // Within ±2^53 the smallest integer form, as for a number; beyond, the 8-byte forms.
    if (n >= -(2n ** 53n) && n <= 2n ** 53n) return writeNumber(Number(n));
    ensure(9);
    if (n >= 0n) {
      buf[pos++] = 0xcf;
      view.setBigUint64(pos, n);
    } else {
      buf[pos++] = 0xd3;
      view.setBigInt64(pos, n);
    }
    pos += 8;
    return;
  }
  throw new RangeError(`Integer ${n} does not fit in 64 bits`);
}

function writeString(s: string): void {
  const length = s.length;
  // Short strings: encode by hand (TextEncoder's call costs more than the loop), into room
  // for the longest possible UTF-8 form behind a one-byte header, fixing the header after.
  if (length < 32) {
    ensure(1 + length * 3);
    const headerAt = pos++;
    let at = pos;
    for (let i = 0; i < length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        buf[at++] = c;
      } else if (c < 0x800) {
        buf[at++] = 0xc0 | (c >> 6);
        buf[at++] = 0x80 | (c & 0x3f);
      } else {
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < length) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            i++;
            buf[at++] = 0xf0 | (c >> 18);
            buf[at++] = 0x80 | ((c >> 12) & 0x3f);
            buf[at++] = 0x80 | ((c >> 6) & 0x3f);
            buf[at++] = 0x80 | (c & 0x3f);
            continue;
          }
        }
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate, as TextEncoder does
        buf[at++] = 0xe0 | (c >> 12);
        buf[at++] = 0x80 | ((c >> 6) & 0x3f);
        buf[at++] = 0x80 | (c & 0x3f);
      }
    }
    const bytes = at - pos;
    if (bytes < 32) {
      buf[headerAt] = 0xa0 | bytes;
      pos = at;
    } else {
      // Up to 93 bytes: needs str8, one more header byte.
      buf.copyWithin(headerAt + 2, headerAt + 1, at);
      buf[headerAt] = 0xd9;
      buf[headerAt + 1] = bytes;
      pos = at + 1;
    }
    return;
  }
  const max = length * 3;
  const header = max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
  ensure(header + max);
  const { written } = textEncoder.encodeInto(s, buf.subarray(pos + header));
  const bytes = written;
  const needed = bytes < 32 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
  if (needed !== header) buf.copyWithin(pos + needed, pos + header, pos + header + bytes);
  if (needed === 1) {
    buf[pos] = 0xa0 | bytes;
  } else if (needed === 2) {
    buf[pos] = 0xd9;
    buf[pos + 1] = bytes;
  } else if (needed === 3) {
    buf[pos] = 0xda;
    view.setUint16(pos + 1, bytes);
  } else {
    buf[pos] = 0xdb;
    view.setUint32(pos + 1, bytes);
  }
  pos += needed + bytes;
}

function writeBin(b: Uint8Array): void {
  const n = b.length;
  ensure(5 + n);
  if (n < 0x100) {
    buf[pos++] = 0xc4;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos++] = 0xc5;
    view.setUint16(pos, n);
    pos += 2;
  } else {
    buf[pos++] = 0xc6;
    view.setUint32(pos, n);
    pos += 4;
  }
  buf.set(b, pos);
  pos += n;
}

function writeHeader(n: number, fix: number, b16: number, b32: number, fixMax: number): void {
  ensure(5);
  if (n < fixMax) {
    buf[pos++] = fix | n;
  } else if (n < 0x10000) {
    buf[pos++] = b16;
    view.setUint16(pos, n);
    pos += 2;
  } else {
    buf[pos++] = b32;
    view.setUint32(pos, n);
    pos += 4;
  }
}

function writeArray(a: unknown[], depth: number): void {
  writeHeader(a.length, 0x90, 0xdc, 0xdd, 16);
  for (let i = 0; i < a.length; i++) write(a[i], depth);
}

function writeObject(o: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(o);
  if (keys.length < 16) {
    // One pass: a fixmap header, its count fixed once the undefined values were left out.
    // (Relative to `start`: ensure may move the value being written.)
    ensure(1);
    const header = pos++ - start;
    let n = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const v = o[key];
      if (v === undefined) continue;
      n++;
      writeString(key);
      write(v, depth);
    }
    buf[start + header] = 0x80 | n;
    return;
  }
  let n = keys.length;
  for (let i = 0; i < keys.length; i++) if (o[keys[i]!] === undefined) n--;
  writeHeader(n, 0x80, 0xde, 0xdf, 16);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = o[key];
    if (v === undefined) continue;
    writeString(key);
    write(v, depth);
  }
}

function writeMapEntries(entries: [unknown, unknown][], depth: number): void {
  const kept = entries.filter(([, v]) => v !== undefined);
  writeHeader(kept.length, 0x80, 0xde, 0xdf, 16);
  for (const [k, v] of kept) {
    write(typeof k === "number" ? k : String(k), depth);
    write(v, depth);
  }
}

// ---- decoding -----------------------------------------------------------------------------

let src: Uint8Array = new Uint8Array(0);
let srcView: DataView = new DataView(src.buffer);
let at = 0;
/** The last array decodeTupleRange read from, whose buffer `srcView` views. */
let lastBytes: Uint8Array = src;
/** End of the input in `src`. */
let limit = 0;

/** A decoding failure: the input is not MessagePack that Cell accepts. */
export class MsgpackError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MsgpackError";
  }
}

function fail(message: string): never {
  throw new MsgpackError(`${message} at byte ${at}`);
}

/** Decodes exactly one value filling all of `bytes`; throws {@linkcode MsgpackError}. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  // Frame bodies are views of one reused read buffer: keep a view of it rather than allocating
  // a DataView per message.
  if (srcView.buffer !== bytes.buffer) srcView = new DataView(bytes.buffer);
  src = bytes;
  lastBytes = EMPTY;
  base = bytes.byteOffset;
  at = 0;
  limit = bytes.length;
  try {
    const value = read(0);
    if (at !== limit) fail(`${limit - at} unexpected bytes after the value`);
    return value;
  } finally {
    src = EMPTY;
  }
}

/**
 * Decodes `bytes[begin..finish)` when it holds exactly one array of 1 to `out.length` elements,
 * into `out`, and returns the count; returns -1 for anything else, malformed input included
 * (decode it with {@linkcode decodeMsgpack} for the error). The values are those
 * {@linkcode decodeMsgpack} gives; `bytes` is read in place (a frame in a ring, say).
 */
export function decodeTupleRange(
  bytes: Uint8Array,
  begin: number,
  finish: number,
  out: unknown[],
): number {
  if (begin >= finish) return -1;
  const h = bytes[begin]!;
  const n = h - 0x90;
  if (n < 1 || n > 15 || n > out.length) return -1;
  if (bytes !== lastBytes) {
    // Records are read in place from one mapping: one view of it, made once.
    lastBytes = bytes;
    if (srcView.buffer !== bytes.buffer) srcView = new DataView(bytes.buffer);
  }
  src = bytes;
  base = bytes.byteOffset;
  at = begin + 1;
  limit = finish;
  try {
    for (let i = 0; i < n; i++) out[i] = read(1);
    return at === finish ? n : -1;
  } catch {
    return -1;
  } finally {
    src = EMPTY;
  }
}

/** Where {@linkcode readValueAt} stopped: just after the value it returned. */
export const cursor: { at: number } = { at: 0 };

/**
 * Decodes the one value that starts at `bytes[p]`, within `bytes[..stop)`, as an element of a
 * frame (the values {@linkcode decodeMsgpack} gives); sets {@linkcode cursor}`.at` after it.
 * Throws {@linkcode MsgpackError} for malformed input.
 */
export function readValueAt(bytes: Uint8Array, p: number, stop: number): unknown {
  if (bytes !== lastBytes) {
    lastBytes = bytes;
    if (srcView.buffer !== bytes.buffer) srcView = new DataView(bytes.buffer);
  }
  src = bytes;
  base = bytes.byteOffset;
  at = p;
  limit = stop;
  try {
    const value = read(1);
    cursor.at = at;
    return value;
  } finally {
    src = EMPTY;
  }
}

/** Offset of `src` in its buffer, for reads through `srcView`. */
let base = 0;

const EMPTY: Uint8Array = new Uint8Array(0);

function need(n: number): void {
  if (at + n > limit) fail(`Truncated input: ${n} more bytes expected`);
}

function read(depth: number): unknown {
  need(1);
  const b = src[at++]!;
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b < 0x90) return readMap(b & 0x0f, depth);
  if (b < 0xa0) return readArray(b & 0x0f, depth);
  if (b < 0xc0) return readString(b & 0x1f);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return readBin(readLength(1));
    case 0xc5:
      return readBin(readLength(2));
    case 0xc6:
      return readBin(readLength(4));
    case 0xca:
      need(4);
      at += 4;
      return srcView.getFloat32(base + at - 4);
    case 0xcb:
      need(8);
      at += 8;
      return srcView.getFloat64(base + at - 8);
    case 0xcc:
      return readLength(1);
    case 0xcd:
      return readLength(2);
    case 0xce:
      return readLength(4);
    case 0xcf: {
      need(8);
      at += 8;
      const n = srcView.getBigUint64(base + at - 8);
      return n <= 2n ** 53n ? Number(n) : n;
    }
    case 0xd0:
      need(1);
      return srcView.getInt8(base + at++);
    case 0xd1:
      need(2);
      at += 2;
      return srcView.getInt16(base + at - 2);
    case 0xd2:
      need(4);
      at += 4;
      return srcView.getInt32(base + at - 4);
    case 0xd3: {
      need(8);
      at += 8;
      const n = srcView.getBigInt64(base + at - 8);
      return n >= -(2n ** 53n) && n <= 2n ** 53n ? Number(n) : n;
    }
    case 0xd9:
      return readString(readLength(1));
    case 0xda:
      return readString(readLength(2));
    case 0xdb:
      return readString(readLength(4));
    case 0xdc:
      return readArray(readLength(2), depth);
    case 0xdd:
      return readArray(readLength(4), depth);
    case 0xde:
      return readMap(readLength(2), depth);
    case 0xdf:
      return readMap(readLength(4), depth);
    case 0xc1:
      return fail("Byte 0xc1 is never used in MessagePack");
    default:
      // 0xc7-0xc9 and 0xd4-0xd8: extension types, which carry nothing Cell defines.
      return fail(
        `MessagePack extension type (0x${b.toString(16)}) is not part of Cell's protocol`,
      );
  }
}

function readLength(size: 1 | 2 | 4): number {
  need(size);
  const n = size === 1
    ? src[at]!
    : size === 2
    ? srcView.getUint16(base + at)
    : srcView.getUint32(base + at);
  at += size;
  return n;
}

function readBin(n: number): Uint8Array {
  need(n);
  at += n;
  return src.slice(at - n, at);
}

/** Short ASCII strings decoded before (keys, method names, common values), by hash of bytes. */
const CACHE_SLOTS = 4096;
const MAX_CACHED = 24;
const cacheBytes: (Uint8Array | undefined)[] = new Array(CACHE_SLOTS).fill(undefined);
const cacheStrings: string[] = new Array(CACHE_SLOTS).fill("");

function readString(n: number): string {
  need(n);
  const begin = at;
  at += n;
  if (n <= MAX_CACHED) return shortAscii(src, begin, n) ?? decodeUtf8(begin, at);
  if (n < 64) {
    for (let i = begin; i < at; i++) if (src[i]! >= 0x80) return decodeUtf8(begin, at);
    return String.fromCharCode.apply(null, src.subarray(begin, at) as unknown as number[]);
  }
  return decodeUtf8(begin, at);
}

/**
 * The fixstr of at most 24 ASCII bytes at `bytes[p]` (the usual key, method name and short
 * value), from the cache of such strings, with `cursor.at` set after it; `undefined` for
 * anything else (read that with {@linkcode readValueAt}).
 */
export function readShortStringAt(bytes: Uint8Array, p: number, end: number): string | undefined {
  const h = bytes[p]!;
  const n = h - 0xa0;
  if (n < 0 || n > MAX_CACHED || p + 1 + n > end) return undefined;
  const s = shortAscii(bytes, p + 1, n);
  if (s !== undefined) cursor.at = p + 1 + n;
  return s;
}

/** The ASCII string `s[begin..begin+n)` (n <= MAX_CACHED), cached; `undefined` if not ASCII. */
function shortAscii(s: Uint8Array, begin: number, n: number): string | undefined {
  if (n === 0) return "";
  const at = begin + n;
  {
    // Hash the length and a few bytes, then take the string decoded before if the slot holds
    // the very same bytes (ASCII, as only ASCII is cached): no string built, nothing allocated.
    let h = Math.imul(n ^ s[begin]!, 0x01000193);
    h = Math.imul(h ^ s[at - 1]!, 0x01000193);
    h = Math.imul(h ^ s[begin + (n >> 1)]!, 0x01000193);
    if (n > 3) h = Math.imul(h ^ s[begin + 1]!, 0x01000193);
    const slot = (h ^ (h >>> 15)) & (CACHE_SLOTS - 1);
    const cached = cacheBytes[slot];
    if (cached !== undefined && cached.length === n) {
      let i = 0;
      while (i < n && cached[i] === s[begin + i]) i++;
      if (i === n) return cacheStrings[slot]!;
    }
    let out = "";
    for (let i = begin; i < at; i++) {
      const b = s[i]!;
      if (b >= 0x80) return undefined;
      out += String.fromCharCode(b);
    }
    cacheBytes[slot] = s.slice(begin, at);
    cacheStrings[slot] = out;
    return out;
  }
}

function decodeUtf8(begin: number, end: number): string {
  try {
    return textDecoder.decode(src.subarray(begin, end));
  } catch {
    at = begin;
    return fail("String is not valid UTF-8");
  }
}

function readArray(n: number, depth: number): unknown[] {
  if (depth >= MAX_DEPTH) fail(`Nesting deeper than ${MAX_DEPTH} levels`);
  // Every element takes at least one byte: a larger count cannot be honest.
  if (n > limit - at) fail(`Array of ${n} elements in ${limit - at} bytes`);
  const out = new Array<unknown>(n);
  for (let i = 0; i < n; i++) out[i] = read(depth + 1);
  return out;
}

function readMap(n: number, depth: number): Record<string, unknown> {
  if (depth >= MAX_DEPTH) fail(`Nesting deeper than ${MAX_DEPTH} levels`);
  if (n * 2 > limit - at) fail(`Map of ${n} entries in ${limit - at} bytes`);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const key = read(depth + 1);
    if (typeof key !== "string" && typeof key !== "number") {
      fail("Map keys must be strings (or integers)");
    }
    const value = read(depth + 1);
    const name = String(key);
    if (name === "__proto__") {
      // An own property, never the prototype.
      Object.defineProperty(out, name, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      out[name] = value;
    }
  }
  return out;
}
