// Stores with the ordering the ring needs, at the lowest cost each architecture allows
// (docs/ring.md, "Memory ordering").
//
// On x86-64 the hardware keeps stores in program order (TSO), so a plain store is a release
// store, and V8 emits typed-array stores in program order (they are effects in the order of its
// effect chain). There the ring publishes with plain stores: `Atomics.store` is sequentially
// consistent, an `xchg` that waits until every earlier store is visible, i.e. until the lines
// the reader holds come back. Elsewhere (arm64, whose stores may pass each other) it uses
// `Atomics.store`.
//
// What a plain store does not give: a later load may be served before the store is visible to
// other cores (no store-load barrier). The one place that matters is the wake-up of a sleeping
// peer (RingChannel.notify), which is built to tolerate it.

/** True where plain stores are release stores (see above). */
export const PLAIN_IS_ORDERED = Deno.build.arch === "x86_64";

/** Stores `value` at `view[index]` after every earlier store (see above). */
export function storeRelease(view: Uint32Array | Int32Array, index: number, value: number): void {
  if (PLAIN_IS_ORDERED) view[index] = value;
  else Atomics.store(view, index, value);
}
