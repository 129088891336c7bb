import assert from "node:assert/strict";
import { join } from "node:path";
import { InstanceLog, logDir, readLogs } from "./logs.ts";

async function run(log: InstanceLog, script: string): Promise<void> {
  const [command, args] = log.wrap("/bin/sh", ["-c", script]);
  await log.capture();
  await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output();
  await log.finish();
}

Deno.test("an instance's stdout and stderr land in its log files, a time and stream per line", async () => {
  const home = await Deno.makeTempDir();
  try {
    const before = Date.now();
    const log = await InstanceLog.open(home, "c", "c-0");
    await run(log, "echo one; echo two >&2; printf 'no newline'");
    const lines = await readLogs(home, "c", {});
    assert.deepEqual(
      lines.map((l) => [l.instance_id, l.stream, l.line]).sort(),
      [["c-0", "stderr", "two"], ["c-0", "stdout", "no newline"], ["c-0", "stdout", "one"]],
    );
    assert(lines.every((l) => l.at_ms >= before && l.at_ms <= Date.now()));
    await run(await InstanceLog.open(home, "c", "c-1"), "echo three");
    assert.deepEqual((await readLogs(home, "c", { instanceId: "c-1" })).map((l) => l.line), [
      "three",
    ]);
    assert.deepEqual((await readLogs(home, "c", { tail: 1 })).map((l) => l.line), ["three"]);
    assert.deepEqual(await readLogs(home, "other", {}), []);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a log file rotates to .1 past its size cap, and both are read", async () => {
  const home = await Deno.makeTempDir();
  try {
    const log = await InstanceLog.open(home, "c", "c-0", 2000);
    await run(log, "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); sleep 0.001; done");
    const files = [...Deno.readDirSync(logDir(home, "c"))].map((e) => e.name).sort();
    assert(files.includes("c-0.out.1"), String(files));
    for (const name of ["c-0.out", "c-0.out.1"]) {
      assert((await Deno.stat(join(logDir(home, "c"), name))).size < 4000);
    }
    const lines = (await readLogs(home, "c", { tail: 1000 })).map((l) => l.line);
    assert.equal(lines.at(-1), "line-299");
    // Consecutive: nothing lost between the two files.
    const first = Number(lines[0]!.slice(5));
    assert.deepEqual(lines, Array.from({ length: 300 - first }, (_, i) => `line-${first + i}`));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("output written while no nucleus reads waits in the pipe for the next reader", async () => {
  const home = await Deno.makeTempDir();
  try {
    const log = await InstanceLog.open(home, "c", "c-0");
    const [command, args] = log.wrap("/bin/sh", [
      "-c",
      "echo before; sleep 0.5; echo after; sleep 1",
    ]);
    await log.capture();
    const child = new Deno.Command(command, { args, stdin: "null", stdout: "null", stderr: "null" })
      .spawn();
    while (!(await readLogs(home, "c", {})).some((l) => l.line === "before")) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await log.close(); // The nucleus goes away; the instance keeps writing.
    await new Promise((r) => setTimeout(r, 700));
    const next = await InstanceLog.open(home, "c", "c-0");
    await next.capture();
    await child.status;
    await next.finish();
    assert.deepEqual((await readLogs(home, "c", {})).map((l) => l.line), ["before", "after"]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
