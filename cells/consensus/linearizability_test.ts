import assert from "node:assert/strict";
import fc from "fast-check";
import { checkKv, type KvInput, type KvOutput, type Operation } from "./linearizability.ts";

let clientSeq = 0;
function op(
  input: KvInput,
  call: number,
  ret: number,
  output?: KvOutput,
  client = clientSeq++,
): Operation {
  return { client, input, call, return: ret, output };
}
const put = (key: string, value: string) => ({ op: "put", key, value }) as const;
const get = (key: string) => ({ op: "get", key }) as const;
const del = (key: string) => ({ op: "delete", key }) as const;
const cas = (key: string, expected: string | null, value: string | null) =>
  ({ op: "cas", key, expected, value }) as const;

function assertRejected(history: Operation[], key = "x"): string {
  const result = checkKv(history);
  assert.equal(result.ok, false);
  assert.equal(result.timedOut, undefined);
  assert.equal(result.key, key);
  assert.ok(result.explanation?.includes(`key "${key}"`), result.explanation);
  return result.explanation!;
}

Deno.test("checkKv() accepts an empty history and a sequential one", () => {
  assert.deepEqual(checkKv([]), { ok: true });
  assert.deepEqual(
    checkKv([
      op(put("x", "a"), 0, 1, { previous: null }),
      op(get("x"), 2, 3, { value: "a" }),
      op(del("x"), 4, 5, { previous: "a" }),
      op(get("x"), 6, 7, { value: null }),
    ]),
    { ok: true },
  );
});

Deno.test("checkKv() rejects a stale read after a completed write", () => {
  const explanation = assertRejected([
    op(put("x", "a"), 0, 10, {}),
    op(put("x", "b"), 11, 20, {}),
    op(get("x"), 21, 22, { value: "a" }),
  ]);
  assert.match(explanation, /get\("x"\) → \{"value":"a"\}/);
});

Deno.test("checkKv() accepts a read concurrent with a write seeing either value", () => {
  for (const value of ["a", "b"]) {
    assert.ok(
      checkKv([
        op(put("x", "a"), 0, 1, {}),
        op(put("x", "b"), 2, 10, {}),
        op(get("x"), 3, 4, { value }),
      ]).ok,
    );
  }
});

Deno.test("checkKv() rejects a lost write", () => {
  // Both writes completed, and a later read sees neither.
  assertRejected([
    op(put("x", "a"), 0, 5, {}),
    op(put("x", "b"), 1, 6, {}),
    op(get("x"), 7, 8, { value: null }),
  ]);
  // A put that reports the previous value skips a completed write.
  assertRejected([
    op(put("x", "a"), 0, 1, { previous: null }),
    op(put("x", "b"), 2, 3, { previous: null }),
  ]);
});

Deno.test("checkKv() rejects two concurrent writes observed in opposite orders", () => {
  const history = [
    op(put("x", "a"), 0, 10, {}),
    op(put("x", "b"), 0, 10, {}),
    op(get("x"), 1, 2, { value: "a" }),
    op(get("x"), 3, 4, { value: "b" }),
    op(get("x"), 5, 6, { value: "a" }),
  ];
  assertRejected(history);
  // Two readers agreeing on one order is fine.
  assert.ok(checkKv(history.slice(0, 4)).ok);
});

Deno.test("checkKv() checks compare-and-set outcomes and previous values", () => {
  assert.ok(
    checkKv([
      op(cas("x", null, "a"), 0, 1, { ok: true, previous: null }),
      op(cas("x", null, "b"), 2, 3, { ok: false, previous: "a" }),
      op(cas("x", "a", null), 4, 5, { ok: true }),
      op(get("x"), 6, 7, { value: null }),
    ]).ok,
  );
  // Two concurrent creates cannot both win.
  assertRejected([
    op(cas("x", null, "a"), 0, 5, { ok: true }),
    op(cas("x", null, "b"), 0, 5, { ok: true }),
  ]);
  // A failed cas on the value it expected.
  assertRejected([
    op(put("x", "a"), 0, 1, {}),
    op(cas("x", "a", "b"), 2, 3, { ok: false }),
  ]);
  // A successful swap whose effect vanishes.
  assertRejected([
    op(cas("x", null, "a"), 0, 1, { ok: true }),
    op(get("x"), 2, 3, { value: null }),
  ]);
  // A failed swap that reports the expected value as the one it found.
  assertRejected([op(cas("x", "a", "b"), 0, 1, { ok: false, previous: "a" })]);
});

Deno.test("checkKv() accepts unknown-outcome writes that did or did not take effect", () => {
  const unknown = op(put("x", "a"), 0, Infinity);
  assert.ok(checkKv([unknown, op(get("x"), 5, 6, { value: "a" })]).ok);
  assert.ok(checkKv([unknown, op(get("x"), 5, 6, { value: null })]).ok);
  // ... taking effect late, after a read that missed it.
  assert.ok(
    checkKv([
      unknown,
      op(get("x"), 5, 6, { value: null }),
      op(get("x"), 7, 8, { value: "a" }),
    ]).ok,
  );
  // ... but once seen, it cannot be unseen.
  assertRejected([
    unknown,
    op(get("x"), 5, 6, { value: "a" }),
    op(get("x"), 7, 8, { value: null }),
  ]);
  // ... and never before its call.
  assertRejected([op(get("x"), 0, 1, { value: "a" }), op(put("x", "a"), 2, Infinity)]);
  // An unknown cas follows the model: it can only have swapped from what it expected.
  assertRejected([
    op(put("x", "b"), 0, 1, {}),
    op(cas("x", "a", "c"), 2, Infinity),
    op(get("x"), 5, 6, { value: "c" }),
  ]);
});

Deno.test("checkKv() checks each key on its own and names the failing one", () => {
  const result = checkKv([
    op(put("x", "a"), 0, 1, {}),
    op(put("y", "a"), 0, 1, {}),
    op(get("x"), 2, 3, { value: "a" }),
    op(get("y"), 2, 3, { value: null }),
  ]);
  assert.equal(result.ok, false);
  assert.equal(result.key, "y");
});

Deno.test("checkKv() ignores extra command fields and rejects malformed operations", () => {
  const input = { op: "put", key: "x", value: "a", client: "c1", seq: 7 } as KvInput;
  assert.ok(checkKv([op(input, 0, 1, {}), op(get("x"), 2, 3, { value: "a" })]).ok);
  assert.throws(() => checkKv([op(get("x"), 5, 1, { value: null })]), RangeError);
  assert.throws(() => checkKv([op({ op: "incr", key: "x" } as never, 0, 1, {})]), TypeError);
  assert.throws(() => checkKv([], { timeoutMs: -1 }), RangeError);
});

Deno.test("checkKv() reports an inconclusive result when it runs out of time", () => {
  // Many concurrent unknown writes and a contradiction at the end: an exponential search.
  const history: Operation[] = [];
  for (let i = 0; i < 40; i++) history.push(op(put("x", `v${i}`), 0, Infinity));
  for (let i = 0; i < 40; i++) {
    history.push(op(get("x"), 10 + 2 * i, 11 + 2 * i, { value: `v${i}` }));
  }
  history.push(op(get("x"), 100, 101, { value: "v0" }));
  const result = checkKv(history, { timeoutMs: 50 });
  assert.equal(result.ok, false);
  assert.equal(result.timedOut, true);
  assert.equal(result.key, "x");
});

// A history made from a sequential execution: every op takes effect at its own instant, and its
// interval is stretched at random around that instant, so the order of instants linearizes it.
interface Plan {
  ops: { key: number; kind: number; value: number; expected: number; spread: [number, number] }[];
  unknown: number[];
}
const planArb = (size: number, keys: number): fc.Arbitrary<Plan> =>
  fc.record({
    ops: fc.array(
      fc.record({
        key: fc.nat(keys - 1),
        kind: fc.nat(4),
        value: fc.nat(5),
        expected: fc.nat(5),
        spread: fc.tuple(fc.nat(40), fc.nat(40)),
      }),
      { minLength: Math.floor(size / 3), maxLength: size },
    ),
    unknown: fc.array(fc.nat(size), { maxLength: 4 }),
  });

function generate(plan: Plan): Operation[] {
  const state = new Map<string, string | null>();
  const history: Operation[] = [];
  plan.ops.forEach((p, i) => {
    const key = `k${p.key}`;
    const before = state.get(key) ?? null;
    const value = `v${p.value}`;
    const expected = p.expected === 0 ? null : `v${p.expected}`;
    const at = 10 * i;
    const call = at - p.spread[0];
    const unknown = plan.unknown.includes(i);
    let input: KvInput;
    let output: KvOutput;
    if (p.kind <= 1) {
      input = get(key);
      output = { value: before };
    } else if (p.kind === 2) {
      input = put(key, value);
      output = { previous: before };
      state.set(key, value);
    } else if (p.kind === 3 && p.value === 0) {
      input = del(key);
      output = { previous: before };
      state.set(key, null);
    } else {
      const next = p.value === 5 ? null : value;
      input = cas(key, expected, next);
      output = { ok: before === expected, previous: before };
      if (before === expected) state.set(key, next);
    }
    if (unknown) history.push(op(input, call, Infinity, undefined, i % 10));
    else history.push(op(input, call, at + p.spread[1], output, i % 10));
  });
  return history;
}

Deno.test("checkKv() accepts every history with a real linearization", () => {
  fc.assert(
    fc.property(planArb(150, 3), (plan) => {
      const result = checkKv(generate(plan));
      assert.ok(result.ok, result.explanation);
    }),
    { numRuns: 200 },
  );
});

Deno.test("checkKv() accepts unknown-outcome writes that never took effect", () => {
  fc.assert(
    fc.property(planArb(80, 2), fc.nat(), fc.nat(1000), (plan, pick, call) => {
      const history = generate(plan);
      history.push(op(put(`k${pick % 2}`, "never"), call, Infinity));
      assert.ok(checkKv(history).ok);
    }),
    { numRuns: 100 },
  );
});

Deno.test("checkKv() rejects a history whose read returned a value never written", () => {
  fc.assert(
    fc.property(planArb(150, 3), fc.nat(), (plan, pick) => {
      const history = generate(plan);
      const reads = history.filter((o) => o.input.op === "get" && o.output !== undefined);
      fc.pre(reads.length > 0);
      const read = reads[pick % reads.length]!;
      read.output = { value: "never-written" };
      const result = checkKv(history);
      assert.equal(result.ok, false);
      assert.equal(result.key, read.input.key);
    }),
    { numRuns: 200 },
  );
});

function bigHistory(
  ops: number,
  keys: number,
  clients: number,
  seed: number,
  unknownEvery = 0,
): Operation[] {
  let s = seed;
  const rand = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
  // Each client runs one op at a time; each op takes effect at a random instant in its interval.
  const state = new Map<string, string>();
  const free = new Array<number>(clients).fill(0);
  const events: { at: number; client: number; input: KvInput; call: number; ret: number }[] = [];
  for (let i = 0; i < ops; i++) {
    const client = rand(clients);
    const call = free[client]! + rand(5);
    const ret = call + 1 + rand(30);
    free[client] = ret + 1;
    const key = `k${rand(keys)}`;
    const input: KvInput = rand(2) === 0 ? get(key) : put(key, `v${i}`);
    events.push({ at: call + rand(ret - call + 1), client, input, call, ret });
  }
  events.sort((a, b) => a.at - b.at);
  // Every `unknownEvery`-th write has an unknown outcome; every other one of those is lost.
  let writes = 0;
  return events.map((e) => {
    const before = state.get(e.input.key) ?? null;
    const unknown = e.input.op === "put" && unknownEvery > 0 && ++writes % unknownEvery === 0;
    const lost = unknown && writes % (2 * unknownEvery) === 0;
    if (e.input.op === "put" && !lost) state.set(e.input.key, e.input.value);
    if (unknown) return op(e.input, e.call, Infinity, undefined, e.client);
    const output = e.input.op === "get" ? { value: before } : { previous: before };
    return op(e.input, e.call, e.ret, output, e.client);
  });
}

Deno.test("checkKv() checks a 2,000-operation history of 10 clients on 5 keys", () => {
  const history = bigHistory(2_000, 5, 10, 1);
  assert.deepEqual(checkKv(history), { ok: true });
  history[1_000]!.output = history[1_000]!.input.op === "get"
    ? { value: "never-written" }
    : { previous: "never-written" };
  assert.equal(checkKv(history).ok, false);
});

Deno.test("checkKv() completes on a 100,000-operation history of 20 clients", () => {
  const result = checkKv(bigHistory(100_000, 5, 20, 2));
  assert.deepEqual(result, { ok: true });
});

Deno.test("checkKv() stays fast when a tenth of the writes have unknown outcomes", () => {
  assert.deepEqual(checkKv(bigHistory(2_000, 5, 10, 3, 10)), { ok: true });
  assert.deepEqual(checkKv(bigHistory(20_000, 5, 20, 4, 10)), { ok: true });
});
