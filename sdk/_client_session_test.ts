import fc from "fast-check";
import assert from "node:assert/strict";
import { allocateId } from "./_client_session.ts";

Deno.test("call ids stay in [1, 2^32 - 1] and never repeat among calls in flight, across the wrap", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 200 }).map((n) => 0xffffffff - n),
      fc.array(fc.oneof(fc.constant("call"), fc.nat({ max: 50 })), { maxLength: 400 }),
      // Long calls from the counter's previous lap, still in flight when it comes round again.
      fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { maxLength: 30 }),
      (start, ops, old) => {
        const ids = { next: start, wrapped: false };
        const inUse = new Set<number>(old);
        let expected = start;
        for (const op of ops) {
          if (op === "call") {
            const id = allocateId(ids, inUse);
            assert.ok(id >= 1 && id <= 0xffffffff, `id ${id}`);
            assert.ok(!inUse.has(id), `id ${id} is in flight already`);
            // Before the wrap, ids are handed out in order, without looking at the calls.
            if (!ids.wrapped || id === 0xffffffff) assert.equal(id, expected);
            expected = id >= 0xffffffff ? 1 : id + 1;
            inUse.add(id);
          } else {
            // An answer arrives: forget the op-th oldest call in flight.
            const done = [...inUse][op % Math.max(1, inUse.size)];
            if (done !== undefined) inUse.delete(done);
          }
        }
      },
    ),
  );
});

Deno.test("before the id counter wraps, allocating an id looks nothing up", () => {
  const ids = { next: 1, wrapped: false };
  const never = { has: (): boolean => assert.fail("looked up an id before the wrap") };
  for (let i = 1; i <= 1000; i++) assert.equal(allocateId(ids, never), i);
});
