/**
 * Test helper run as a child process by `wal_test.ts`: appends entries to the WAL in `Deno.args[0]`
 * in batches of `Deno.args[1]`, syncing after each batch and printing the last synced index, until
 * it is killed.
 *
 * @module
 */
import { openWal } from "./wal.ts";

if (import.meta.main) await run();

async function run(): Promise<void> {
  const [dir = "", batch = "8", segmentBytes = "65536"] = Deno.args;
  const wal = await openWal(dir, { segmentBytes: Number(segmentBytes) });
  const { entries } = await wal.load();
  let index = entries.at(-1)?.index ?? 0;
  const encoder = new TextEncoder();
  for (;;) {
    const next = [];
    for (let i = 0; i < Number(batch); i++) {
      index++;
      next.push({
        index,
        term: 1,
        type: "normal" as const,
        data: encoder.encode(`entry ${index} `.repeat(8)),
      });
    }
    wal.append(next);
    wal.setHardState({ term: 1, vote: "n1", commit: index });
    await wal.sync();
    await Deno.stdout.write(encoder.encode(`${index}\n`));
  }
}
