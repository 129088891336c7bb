import assert from "node:assert/strict";
import { join } from "node:path";
import { CellError } from "@cell/sdk";
import {
  childPids,
  isSameProcess,
  type NucleusState,
  processEnv,
  processStartTime,
  StateStore,
  writeDurably,
} from "./state.ts";

const state = (cells: string[]): NucleusState => ({
  version: 1,
  deployments: cells.map((cell) => ({
    cell,
    module: `/srv/${cell}.ts`,
    instances: 2,
    sandbox: true,
    args: [],
    permissions: ["--no-prompt"],
  })),
  instances: [{ cell: "a", instance_id: "a-0", pid: 42, start_time: 7 }],
});

Deno.test("the state store saves and loads deployments and instances", async () => {
  const home = await Deno.makeTempDir();
  try {
    const store = new StateStore(home);
    assert.deepEqual(await store.load(), { version: 1, deployments: [], instances: [] });
    await Promise.all([store.save(state(["a"])), store.save(state(["a", "b"]))]);
    assert.deepEqual(await new StateStore(home).load(), state(["a", "b"]));
    assert.deepEqual([...Deno.readDirSync(join(home, "nucleus"))].map((e) => e.name), [
      "state.json",
    ]);
    await Deno.writeTextFile(store.path, "{ half a file");
    await assert.rejects(
      store.load(),
      (e) => e instanceof CellError && e.code === "DATA_LOSS" && /move it away/.test(e.message),
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a failing write leaves the old state file intact and fails clearly", async () => {
  const home = await Deno.makeTempDir();
  try {
    let fail = false;
    const store = new StateStore(home, {
      writer: async (path, data) => {
        if (!fail) return await writeDurably(path, data);
        await Deno.writeFile(path, data.subarray(0, 5));
        throw new Error("No space left on device (os error 28)");
      },
    });
    await store.save(state(["a"]));
    const before = await Deno.readTextFile(store.path);
    fail = true;
    await assert.rejects(store.save(state(["a", "b"])), (e) => {
      assert(e instanceof CellError);
      assert.equal(e.code, "RESOURCE_EXHAUSTED");
      assert.match(e.message, /the previous state is kept and nothing changed: free space/);
      return true;
    });
    assert.equal(await Deno.readTextFile(store.path), before);
    assert.deepEqual([...Deno.readDirSync(join(home, "nucleus"))].map((e) => e.name), [
      "state.json",
    ]);
    fail = false;
    await store.save(state(["b"]));
    assert.deepEqual((await store.load()).deployments.map((d) => d.cell), ["b"]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

async function mountTinyTmpfs(dir: string): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  const { success } = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
    stdout: "null",
    stderr: "null",
  }).output();
  return success;
}

Deno.test("on a full disk (a 64 KiB tmpfs) the old state file survives", async (t) => {
  const home = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(home, "nucleus"));
    if (!(await mountTinyTmpfs(join(home, "nucleus")))) {
      await t.step({ name: "skipped: mounting a tmpfs needs root", ignore: true, fn() {} });
      return;
    }
    try {
      const store = new StateStore(home);
      await store.save(state(["a"]));
      const before = await Deno.readTextFile(store.path);
      // Fill the disk.
      using filler = await Deno.open(join(home, "nucleus", "filler"), {
        write: true,
        create: true,
      });
      const chunk = new Uint8Array(4096);
      try {
        while (true) await filler.write(chunk);
      } catch {
        // Full.
      }
      const big = state(Array.from({ length: 200 }, (_, i) => `cell-${i}`));
      await assert.rejects(
        store.save(big),
        (e) => e instanceof CellError && e.code === "RESOURCE_EXHAUSTED",
      );
      assert.equal(await Deno.readTextFile(store.path), before);
      assert.deepEqual(
        [...Deno.readDirSync(join(home, "nucleus"))].map((e) => e.name).sort(),
        ["filler", "state.json"],
      );
    } finally {
      await new Deno.Command("umount", { args: [join(home, "nucleus")] }).output();
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a process is named by its pid and start time, and its environment holds the instance id", async () => {
  const child = new Deno.Command("sleep", {
    args: ["30"],
    env: { CELL_INSTANCE_ID: "x-0" },
    clearEnv: true,
  }).spawn();
  try {
    const start = processStartTime(child.pid)!;
    assert(start > 0);
    assert.equal(processEnv(child.pid).CELL_INSTANCE_ID, "x-0");
    assert(isSameProcess(child.pid, start, "x-0"));
    assert(!isSameProcess(child.pid, start, "x-1"));
    assert(!isSameProcess(child.pid, start + 1));
    assert(childPids(Deno.pid).includes(child.pid));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  assert.equal(processStartTime(child.pid), undefined);
  assert.equal(processStartTime(0), undefined);
});
