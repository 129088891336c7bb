import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { CellError } from "@cell/sdk";
import type { Entry } from "./types.ts";
import { openWal, type WalOptions } from "./wal.ts";

const encoder = new TextEncoder();

function entries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let index = from; index <= to; index++) {
    out.push({
      index,
      term,
      type: index % 7 === 0 ? "noop" : "normal",
      data: encoder.encode(`e${index}t${term}`),
    });
  }
  return out;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "wal-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function reopen(dir: string, options?: WalOptions) {
  const wal = await openWal(dir, options);
  const state = await wal.load();
  return { wal, state };
}

async function segments(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".wal")) names.push(e.name);
  return names.sort().map((n) => join(dir, n));
}

const indexes = (list: Entry[]) => list.map((e) => e.index);

Deno.test("a WAL round-trips entries, hard state and an empty start", async () => {
  await withDir(async (dir) => {
    const { wal, state } = await reopen(dir);
    assert.deepEqual(state, {
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: null,
      entries: [],
    });
    wal.append(entries(1, 3));
    wal.append(entries(4, 10));
    wal.setHardState({ term: 2, vote: "n2", commit: 9 });
    await wal.sync();
    await wal.close();
    const again = await reopen(dir);
    assert.deepEqual(again.state.entries, entries(1, 10));
    assert.deepEqual(again.state.hardState, { term: 2, vote: "n2", commit: 9 });
    await again.wal.close();
  });
});

Deno.test("append() at or below the last index replaces the conflicting suffix", async () => {
  await withDir(async (dir) => {
    const { wal } = await reopen(dir);
    wal.append(entries(1, 10, 1));
    await wal.sync();
    wal.append(entries(6, 8, 2));
    await wal.sync();
    assert.throws(() => wal.append(entries(10, 11)), RangeError);
    await wal.close();
    const { wal: again, state } = await reopen(dir);
    assert.deepEqual(state.entries, [...entries(1, 5, 1), ...entries(6, 8, 2)]);
    await again.close();
  });
});

Deno.test("a second open of the same directory fails naming the holder's pid", async () => {
  await withDir(async (dir) => {
    const { wal } = await reopen(dir);
    await assert.rejects(openWal(dir), (e: unknown) => {
      assert.ok(e instanceof CellError);
      assert.equal(e.code, "FAILED_PRECONDITION");
      assert.match(e.message, new RegExp(`in use by pid ${Deno.pid}`));
      return true;
    });
    await wal.close();
    await (await openWal(dir)).close();
  });
});

Deno.test("load() drops a torn tail cut at any byte of the last record, keeping the rest", async () => {
  await withDir(async (dir) => {
    const { wal } = await reopen(dir);
    wal.append(entries(1, 5));
    await wal.sync();
    const [segment] = await segments(dir);
    const before = (await Deno.stat(segment!)).size;
    wal.append(entries(6, 6));
    await wal.sync();
    await wal.close();
    const full = await Deno.readFile(segment!);
    for (let cut = before; cut < full.length; cut++) {
      await Deno.writeFile(segment!, full.subarray(0, cut));
      const { wal: again, state } = await reopen(dir);
      assert.deepEqual(indexes(state.entries), [1, 2, 3, 4, 5], `cut at ${cut}`);
      // Writing goes on after the cut.
      again.append(entries(6, 6, 3));
      await again.sync();
      await again.close();
      assert.deepEqual(
        (await reopen(dir).then(async (r) => (await r.wal.close(), r.state))).entries.at(-1)?.term,
        3,
      );
    }
  });
});

Deno.test("load() keeps every synced batch whatever the torn tail (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 8 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      async (batches, where) => {
        await withDir(async (dir) => {
          const { wal } = await reopen(dir);
          let last = 0;
          let durable = 0;
          let durableSize = 0;
          const [segment] = await segments(dir);
          for (const size of batches) {
            durable = last;
            durableSize = (await Deno.stat(segment!)).size;
            wal.append(entries(last + 1, last + size));
            last += size;
            await wal.sync();
          }
          await wal.close();
          const full = await Deno.readFile(segment!);
          const cut = durableSize + Math.floor(where * (full.length - durableSize));
          await Deno.writeFile(segment!, full.subarray(0, cut));
          const { wal: again, state } = await reopen(dir);
          await again.close();
          assert.deepEqual(state.entries, entries(1, durable));
        });
      },
    ),
    { numRuns: 25 },
  );
});

Deno.test("load() detects a flipped bit in the last record and drops that record", async () => {
  await withDir(async (dir) => {
    const { wal } = await reopen(dir);
    wal.append(entries(1, 5));
    await wal.sync();
    wal.append(entries(6, 8));
    await wal.sync();
    await wal.close();
    const [segment] = await segments(dir);
    const bytes = await Deno.readFile(segment!);
    bytes[bytes.length - 3]! ^= 0x10;
    await Deno.writeFile(segment!, bytes);
    const { wal: again, state } = await reopen(dir);
    assert.deepEqual(indexes(state.entries), [1, 2, 3, 4, 5]);
    await again.close();
  });
});

Deno.test("load() refuses a corrupt record in a segment before the last", async () => {
  await withDir(async (dir) => {
    const { wal } = await reopen(dir, { segmentBytes: 256 });
    for (let i = 0; i < 20; i++) {
      wal.append(entries(i * 5 + 1, i * 5 + 5));
      await wal.sync();
    }
    await wal.close();
    const files = await segments(dir);
    assert.ok(files.length > 2);
    const bytes = await Deno.readFile(files[1]!);
    bytes[bytes.length - 20]! ^= 0x01;
    await Deno.writeFile(files[1]!, bytes);
    await assert.rejects(
      openWal(dir).then(async (w) => {
        try {
          await w.load();
        } finally {
          await w.close();
        }
      }),
      (e: unknown) =>
        e instanceof CellError && e.code === "DATA_LOSS" && e.message.includes("not the last"),
    );
  });
});

Deno.test("saveSnapshot() compacts covered segments and reloads snapshot plus later entries", async () => {
  await withDir(async (dir) => {
    const { wal } = await reopen(dir, { segmentBytes: 512 });
    for (let i = 0; i < 30; i++) {
      wal.append(entries(i * 4 + 1, i * 4 + 4));
      wal.setHardState({ term: 1, vote: "n1", commit: i * 4 });
      await wal.sync();
    }
    const before = (await segments(dir)).length;
    const data = encoder.encode("state at 100");
    await wal.saveSnapshot({ meta: { index: 100, term: 1, members: ["n1", "n2"] }, data });
    const after = (await segments(dir)).length;
    assert.ok(after < before, `${after} segments after compaction, ${before} before`);
    wal.append(entries(121, 125));
    await wal.sync();
    await wal.close();
    const { wal: again, state } = await reopen(dir, { segmentBytes: 512 });
    assert.deepEqual(state.snapshot, {
      meta: { index: 100, term: 1, members: ["n1", "n2"] },
      data,
    });
    assert.deepEqual(state.entries, entries(101, 125));
    assert.deepEqual(state.hardState, { term: 1, vote: "n1", commit: 116 });
    await again.close();
  });
});

Deno.test("saveSnapshot() drops the whole log when it disagrees with the snapshot's term", async () => {
  await withDir(async (dir) => {
    const { wal } = await reopen(dir);
    wal.append(entries(1, 20, 1));
    await wal.sync();
    await wal.saveSnapshot({
      meta: { index: 10, term: 2, members: ["n1"] },
      data: new Uint8Array([1]),
    });
    wal.append(entries(11, 12, 2));
    await wal.sync();
    await wal.close();
    const { wal: again, state } = await reopen(dir);
    assert.equal(state.snapshot?.meta.index, 10);
    assert.deepEqual(state.entries, entries(11, 12, 2));
    assert.equal(state.hardState.commit, 10);
    await again.close();
  });
});

Deno.test("close() syncs what is pending, and a closed WAL refuses writes", async () => {
  await withDir(async (dir) => {
    const { wal } = await reopen(dir);
    wal.append(entries(1, 3));
    await wal.close();
    assert.throws(() => wal.append(entries(4, 4)), /closed/);
    const { wal: again, state } = await reopen(dir);
    assert.deepEqual(indexes(state.entries), [1, 2, 3]);
    await again.close();
  });
});

Deno.test("every batch whose sync resolved survives a SIGKILL of the writing process", async () => {
  await withDir(async (dir) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_wal_crash_child.ts", import.meta.url).pathname,
        dir,
        "8",
        "16384",
      ],
      cwd: new URL(".", import.meta.url).pathname,
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let synced = 0;
    let text = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      while (synced < 2_000) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
        const lines = text.split("\n");
        text = lines.pop()!;
        if (lines.length > 0) synced = Number(lines.at(-1));
      }
      child.kill("SIGKILL");
    } finally {
      await reader.cancel().catch(() => {});
      await child.status;
    }
    assert.ok(synced >= 2_000, `child stopped after ${synced}`);
    const { wal, state } = await reopen(dir, { segmentBytes: 16384 });
    await wal.close();
    assert.ok(state.entries.length >= synced, `${state.entries.length} entries, ${synced} synced`);
    assert.deepEqual(indexes(state.entries), Array.from(state.entries, (_, i) => i + 1));
    assert.ok(state.hardState.commit >= synced);
  });
});
