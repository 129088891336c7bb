import assert from "node:assert/strict";
import { decodeCommand, encodeCommand, KvStore } from "./kv.ts";

Deno.test("apply() puts, deletes and compares-and-sets, reporting the previous value", () => {
  const kv = new KvStore();
  assert.deepEqual(kv.apply(1, { op: "put", key: "a", value: "1" }), {
    ok: true,
    previous: null,
    index: 1,
  });
  assert.deepEqual(kv.apply(2, { op: "cas", key: "a", expected: "0", value: "2" }), {
    ok: false,
    previous: "1",
    index: 2,
  });
  assert.equal(kv.apply(3, { op: "cas", key: "a", expected: "1", value: "2" }).ok, true);
  assert.equal(kv.get("a"), "2");
  assert.equal(kv.apply(4, { op: "cas", key: "a", expected: "2", value: null }).ok, true);
  assert.equal(kv.get("a"), null);
  assert.equal(kv.apply(5, { op: "cas", key: "a", expected: null, value: "x" }).ok, true);
  assert.deepEqual(kv.apply(6, { op: "delete", key: "a" }).previous, "x");
  assert.equal(kv.appliedIndex, 6);
});

Deno.test("apply() applies a retried command once and returns the first result", () => {
  const kv = new KvStore();
  const first = kv.apply(1, { op: "put", key: "a", value: "1", client: "c", seq: 1 });
  kv.apply(2, { op: "put", key: "a", value: "2", client: "d", seq: 1 });
  assert.deepEqual(kv.apply(3, { op: "put", key: "a", value: "1", client: "c", seq: 1 }), first);
  assert.equal(kv.get("a"), "2");
  kv.apply(4, { op: "delete", key: "a", client: "c", seq: 2 });
  assert.equal(kv.get("a"), null);
});

Deno.test("snapshot() and restore() carry data and sessions", () => {
  const kv = new KvStore();
  kv.apply(1, { op: "put", key: "a", value: "1", client: "c", seq: 7 });
  const copy = new KvStore();
  copy.restore(kv.snapshot());
  assert.equal(copy.get("a"), "1");
  assert.equal(copy.appliedIndex, 1);
  assert.deepEqual(copy.apply(2, { op: "put", key: "a", value: "9", client: "c", seq: 7 }), {
    ok: true,
    previous: null,
    index: 1,
  });
  assert.equal(copy.get("a"), "1");
});

Deno.test("decodeCommand() rejects payloads that are not commands", () => {
  const bytes = encodeCommand({ op: "cas", key: "k", expected: null, value: "v" });
  assert.deepEqual(decodeCommand(bytes), { op: "cas", key: "k", expected: null, value: "v" });
  assert.throws(() => decodeCommand(new Uint8Array([0xc0])), TypeError);
});

Deno.test("the least recently used sessions are forgotten past maxSessions, alike after a snapshot", () => {
  const kv = new KvStore({ maxSessions: 2 });
  kv.apply(1, { op: "put", key: "k", value: "a", client: "a", seq: 1 });
  kv.apply(2, { op: "put", key: "k", value: "b", client: "b", seq: 1 });
  kv.apply(3, { op: "put", key: "k", value: "a2", client: "a", seq: 2 }); // "a" used last.
  kv.apply(4, { op: "put", key: "k", value: "c", client: "c", seq: 1 }); // Forgets "b".
  const copy = new KvStore({ maxSessions: 2 });
  copy.restore(kv.snapshot());
  for (const store of [kv, copy]) {
    // "a" is remembered: its retry is answered from the session, not applied.
    assert.equal(
      store.apply(5, { op: "put", key: "k", value: "a2", client: "a", seq: 2 }).index,
      3,
    );
    assert.equal(store.get("k"), "c");
    // "b" was forgotten: its retry is applied again.
    assert.equal(store.apply(6, { op: "put", key: "k", value: "b", client: "b", seq: 1 }).index, 6);
    assert.equal(store.get("k"), "b");
  }
  assert.throws(() => new KvStore({ maxSessions: 0 }), RangeError);
});
