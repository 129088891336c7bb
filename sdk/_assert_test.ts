// Assertions for the SDK's tests, on node:assert/strict (JSR's @std/assert is not reachable).
import nodeAssert from "node:assert/strict";

export function assert(condition: unknown, message?: string): asserts condition {
  nodeAssert.ok(condition, message);
}

export function assertEquals<T>(actual: unknown, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    nodeAssert.ok(e instanceof type, `Expected ${type.name}, got ${String(e)}`);
    return e as E;
  }
  throw new nodeAssert.AssertionError({
    message: `Expected the promise to reject with ${type.name}`,
  });
}
