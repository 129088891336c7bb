/**
 * Shared-memory segments: created 0600 with a name that carries the creator's uid and pid,
 * mapped into JavaScript, unlinked as soon as both sides have mapped them (and again on close,
 * harmlessly), and collected at start when their creator died before unlinking them.
 *
 * A mapping is never unmapped while JavaScript can still touch it (that would crash the
 * process): it is unmapped by a `FinalizationRegistry` once its `ArrayBuffer` is garbage.
 *
 * @module
 */
import { cString, errnoName, type RingSymbols } from "./lib.ts";
import { initSegment, segmentBytes } from "./ring.ts";

/** A mapped segment. */
export interface Segment {
  /** Its POSIX shm name, `/cell-ring-<uid>-<pid>-<n>-<random>`. */
  readonly name: string;
  /** The whole mapping. */
  readonly buffer: ArrayBuffer;
  /** Address of the mapping, for the futex calls. */
  readonly pointer: Deno.PointerObject;
  /** Removes the name from `/dev/shm`; the mapping stays usable. Idempotent. */
  unlink(): void;
}

type Mapping = { lib: RingSymbols; pointer: Deno.PointerObject; bytes: number };
const unmapper = new FinalizationRegistry<Mapping>(({ lib, pointer, bytes }) => {
  lib.cell_ring_unmap(pointer, BigInt(bytes));
});

let counter = 0;

/** The prefix of this user's segment names in `/dev/shm`. */
export function segmentPrefix(lib: RingSymbols): string {
  return `cell-ring-${lib.cell_ring_euid()}-`;
}

function map(lib: RingSymbols, fd: number, bytes: number, name: string): Segment {
  const pointer = lib.cell_ring_map(fd, BigInt(bytes));
  lib.cell_ring_close(fd);
  if (pointer === null) {
    throw new Error(`Cannot map segment '${name}': ${errnoName(-lib.cell_ring_errno())}`);
  }
  const buffer = Deno.UnsafePointerView.getArrayBuffer(pointer, bytes);
  unmapper.register(buffer, { lib, pointer, bytes });
  let linked = true;
  return {
    name,
    buffer,
    pointer,
    unlink() {
      if (!linked) return;
      linked = false;
      lib.cell_ring_shm_unlink(cString(name));
    },
  };
}

/**
 * Creates a segment of two rings of `capacity` bytes, mode 0600, and maps it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSegment, loadRingLibrary, openSegment } from "@cell/ring";
 * const lib = await loadRingLibrary();
 * const segment = createSegment(lib, 4096);
 * const peer = openSegment(lib, segment.name);
 * segment.unlink();
 * assert.ok(peer.buffer.byteLength === segment.buffer.byteLength);
 * ```
 */
export function createSegment(lib: RingSymbols, capacity: number): Segment {
  const bytes = segmentBytes(capacity);
  const random = crypto.getRandomValues(new Uint32Array(2));
  const name = `/${segmentPrefix(lib)}${Deno.pid}-${++counter}-${random[0]!.toString(16)}${
    random[1]!.toString(16)
  }`;
  const fd = lib.cell_ring_shm_create(cString(name), BigInt(bytes));
  if (fd < 0) throw new Error(`Cannot create segment '${name}': ${errnoName(fd)}`);
  let segment: Segment;
  try {
    segment = map(lib, fd, bytes, name);
  } catch (e) {
    lib.cell_ring_shm_unlink(cString(name));
    throw e;
  }
  initSegment(segment.buffer, capacity, Deno.pid);
  return segment;
}

/**
 * Opens and maps the segment `name` made by a process of this user; refuses one owned by another
 * user or open to others.
 */
export function openSegment(lib: RingSymbols, name: string): Segment {
  if (!/^\/cell-ring-[0-9a-f-]+$/.test(name)) throw new Error(`Invalid segment name '${name}'`);
  const fd = lib.cell_ring_shm_open(cString(name));
  if (fd < 0) throw new Error(`Cannot open segment '${name}': ${errnoName(fd)}`);
  const bytes = Number(lib.cell_ring_fd_size(fd));
  if (bytes < 0 || bytes > 2 ** 31 + 512) {
    lib.cell_ring_close(fd);
    throw new Error(`Segment '${name}' has an impossible size ${bytes}`);
  }
  return map(lib, fd, bytes, name);
}

/**
 * Unlinks this user's segments whose creator process is gone (left by a process killed during
 * a handshake); returns how many.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collectStaleSegments, loadRingLibrary } from "@cell/ring";
 * assert.ok(collectStaleSegments(await loadRingLibrary()) >= 0);
 * ```
 */
export function collectStaleSegments(lib: RingSymbols): number {
  return Math.max(0, lib.cell_ring_collect_stale(cString(segmentPrefix(lib))));
}
