/**
 * The conformance service: one method per feature a generated client must get right (every
 * scalar at its bounds, nesting, lists, maps, optionals, enums, `any`, large payloads, errors,
 * deadlines, cancellation). `cell.ts` serves it; `cases.json` calls it.
 *
 * @module
 */
import { CellError, type Code, method, protein, service, t } from "@cell/sdk";

/** Every scalar type once. */
export const Scalars = protein("Scalars", {
  /** A boolean. */
  b: t.bool(),
  /** A UTF-8 string. */
  s: t.string(),
  /** Raw bytes. */
  by: t.bytes(),
  f32: t.f32(),
  f64: t.f64(),
  i8: t.i8(),
  i16: t.i16(),
  i32: t.i32(),
  i64: t.i64(),
  u8: t.u8(),
  u16: t.u16(),
  u32: t.u32(),
  u64: t.u64(),
});

/** A small protein nested in others. */
export const Inner = protein("Inner", {
  id: t.u32(),
  label: t.string(),
});

/** Nesting: proteins inside proteins, lists, maps, enums and optionals. */
export const Outer = protein("Outer", {
  name: t.string(),
  inner: Inner,
  items: t.list(Inner),
  by_name: t.map(Inner),
  matrix: t.list(t.list(t.i32())),
  tags: t.map(t.string()),
  color: t.enum("red", "green", "dark-blue"),
  maybe: t.optional(Inner),
});

/** Every field optional. */
export const Optionals = protein("Optionals", {
  note: t.optional(t.string()),
  count: t.optional(t.i32()),
  inner: t.optional(Inner),
  names: t.optional(t.list(t.string())),
  color: t.optional(t.enum("red", "green", "dark-blue")),
  data: t.optional(t.bytes()),
});

/** An untyped value. */
export const Anything = protein("Anything", { value: t.any() });

/** A blob of bytes. */
export const Blob = protein("Blob", { data: t.bytes() });

/** How many bytes to send back. */
export const Size = protein("Size", { size: t.u32() });

/** An error to raise. */
export const Failure = protein("Failure", {
  /** The code's name, such as `NOT_FOUND`. */
  code: t.string(),
  message: t.string(),
});

/** Nothing. */
export const Empty = protein("Empty", {});

/** A slow call that can be told apart from others by its token. */
export const Slow = protein("Slow", {
  delay_ms: t.u32(),
  token: t.string(),
});

/** Whether a slow call finished. */
export const Done = protein("Done", { done: t.bool() });

/** A token of a slow call. */
export const Token = protein("Token", { token: t.string() });

/** Whether the server saw the call's cancellation. */
export const Cancelled = protein("Cancelled", { cancelled: t.bool() });

/** The cell every language's generated client is tested against. */
export const Conformance = service({
  /** Returns the request unchanged. */
  echo_scalars: method(Scalars, Scalars, { idempotent: true }),
  /** Returns the request unchanged. */
  echo_nested: method(Outer, Outer, { idempotent: true }),
  /** Returns the request unchanged. */
  echo_optionals: method(Optionals, Optionals, { idempotent: true }),
  /** Returns the request unchanged. */
  echo_any: method(Anything, Anything, { idempotent: true }),
  /** Returns the request unchanged; for large payloads. */
  echo_blob: method(Blob, Blob, { idempotent: true }),
  /** Returns `size` bytes, byte `i` being `i % 251`. */
  make_blob: method(Size, Blob, { idempotent: true }),
  /** Fails with the requested code and message. */
  fail: method(Failure, Empty),
  /** Answers after `delay_ms`, unless cancelled or past its deadline first. */
  slow: method(Slow, Done),
  /** Whether the `slow` call with this token was cancelled; waits up to 2 s for it to be. */
  was_cancelled: method(Token, Cancelled),
});

/** The byte pattern of `make_blob` and of `{"$pattern": n}` in `cases.json`. */
export function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = i % 251;
  return out;
}

const cancelled = new Map<string, PromiseWithResolvers<void>>();

function cancellation(token: string): PromiseWithResolvers<void> {
  let entry = cancelled.get(token);
  if (entry === undefined) {
    entry = Promise.withResolvers<void>();
    cancelled.set(token, entry);
  }
  return entry;
}

/** The implementation served by `cell.ts`. */
export const implementation = Conformance.implement({
  echo_scalars: (r) => r,
  echo_nested: (r) => r,
  echo_optionals: (r) => r,
  echo_any: (r) => r,
  echo_blob: (r) => r,
  make_blob: ({ size }) => ({ data: pattern(size) }),
  fail: ({ code, message }) => {
    throw new CellError(code as Code, message);
  },
  slow: ({ delay_ms, token }, ctx) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ done: true }), delay_ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        cancellation(token).resolve();
        reject(ctx.signal.reason);
      }, { once: true });
    }),
  was_cancelled: async ({ token }) => {
    const seen = await Promise.race([
      cancellation(token).promise.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 2000)),
    ]);
    return { cancelled: seen };
  },
});
