/**
 * The `Deno.dlopen` binding of `libcell_ring.so`. Calls that can block (accept, read, write,
 * wait) are `nonblocking: true`, so they run on a worker thread and the event loop stays free;
 * the rest are plain calls, which V8 turns into fast calls (no struct parameters anywhere).
 *
 * @module
 */
import { ensureLibrary } from "./build.ts";

const SYMBOLS = {
  cell_ring_version: { parameters: [], result: "i32" },
  cell_ring_segment_bytes: { parameters: ["u32"], result: "u64" },
  cell_ring_max_record: { parameters: ["u32"], result: "u32" },
  cell_ring_init: { parameters: ["pointer", "u32"], result: "i32" },
  cell_ring_check: { parameters: ["pointer", "u64"], result: "i32" },
  cell_ring_copy: { parameters: ["pointer", "u32", "u32", "buffer", "u32"], result: "i32" },
  cell_ring_push: { parameters: ["pointer", "i32", "buffer", "u32", "u32"], result: "i32" },
  cell_ring_pop: { parameters: ["pointer", "i32", "buffer", "u32", "buffer"], result: "i32" },
  cell_ring_shm_create: { parameters: ["buffer", "u64"], result: "i32" },
  cell_ring_shm_open: { parameters: ["buffer"], result: "i32" },
  cell_ring_fd_size: { parameters: ["i32"], result: "i64" },
  cell_ring_map: { parameters: ["i32", "u64"], result: "pointer" },
  cell_ring_unmap: { parameters: ["pointer", "u64"], result: "i32" },
  cell_ring_shm_unlink: { parameters: ["buffer"], result: "i32" },
  cell_ring_collect_stale: { parameters: ["buffer"], result: "i32" },
  cell_ring_errno: { parameters: [], result: "i32" },
  cell_ring_wait: {
    parameters: ["pointer", "i32", "i32", "i32", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  cell_ring_wake: { parameters: ["pointer"], result: "i32" },
  cell_ring_listen: { parameters: ["buffer"], result: "i32" },
  cell_ring_accept: { parameters: ["i32", "i32"], result: "i32", nonblocking: true },
  cell_ring_connect: { parameters: ["buffer"], result: "i32" },
  cell_ring_peer_cred: { parameters: ["i32", "buffer"], result: "i32" },
  cell_ring_read: {
    parameters: ["i32", "buffer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  cell_ring_write: {
    parameters: ["i32", "buffer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  cell_ring_peer_gone: { parameters: ["i32"], result: "i32" },
  cell_ring_shutdown: { parameters: ["i32"], result: "i32" },
  cell_ring_close: { parameters: ["i32"], result: "i32" },
  cell_ring_euid: { parameters: [], result: "u32" },
} as const;

/** The library's functions, as `Deno.dlopen` exposes them. */
export type RingSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let loading: Promise<RingSymbols> | undefined;

/**
 * Loads the library once per process, building it first if needed (see `build.ts`). Needs the
 * `ffi` permission, and read/write/run permissions to build.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadRingLibrary, RING_VERSION } from "@cell/ring";
 * const lib = await loadRingLibrary();
 * assert.equal(lib.cell_ring_version(), RING_VERSION);
 * ```
 */
export function loadRingLibrary(): Promise<RingSymbols> {
  loading ??= (async () => {
    const path = await ensureLibrary();
    const lib = Deno.dlopen(path, SYMBOLS);
    return lib.symbols;
  })();
  loading.catch(() => loading = undefined);
  return loading;
}

const encoder = new TextEncoder();

/**
 * `s` as a NUL-terminated C string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cString } from "@cell/ring";
 * assert.ok(cString("a").length === 2);
 * ```
 */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Names of the errno values the library returns (negated). */
const ERRNO: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  17: "EEXIST",
  22: "EINVAL",
  32: "EPIPE",
  36: "ENAMETOOLONG",
  71: "EPROTO",
  90: "EMSGSIZE",
  98: "EADDRINUSE",
  104: "ECONNRESET",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
};

/**
 * The name of a negative errno result, like `"ENOENT"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errnoName } from "@cell/ring";
 * assert.ok(errnoName(-2) === "ENOENT");
 * ```
 */
export function errnoName(result: number): string {
  return ERRNO[-result] ?? `errno ${-result}`;
}
