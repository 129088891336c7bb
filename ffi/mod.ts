/**
 * `@cell/ring`: single-producer single-consumer rings of variable-length frames in shared
 * memory, for Cell's same-host transport. A C library (`include/cell_ring.h`, built with the
 * system compiler on first use) owns shared memory, futex sleep/wake and the handshake socket;
 * the rings themselves run in JavaScript over the mapped segment. The SDK wraps this package
 * into its `shm` transport; nothing here depends on the SDK.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initSegment, RingReader, RingWriter, segmentBytes } from "@cell/ring";
 * const buffer = new ArrayBuffer(segmentBytes(4096));
 * initSegment(buffer, 4096);
 * new RingWriter(buffer, 1).write(new TextEncoder().encode("hi"), false);
 * assert.ok(new RingReader(buffer, 1).next()?.length === 2);
 * ```
 *
 * @module
 */
export * from "./ring.ts";
export { ensureLibrary, libraryPath, readEnv } from "./build.ts";
export { cString, errnoName, loadRingLibrary, type RingSymbols } from "./lib.ts";
export * from "./segment.ts";
export * from "./handshake.ts";
