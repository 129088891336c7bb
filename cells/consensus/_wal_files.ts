/**
 * File-system helpers of the write-ahead log: the directory lock and directory fsync. Private to
 * the consensus cell.
 *
 * @module
 */
import { join } from "node:path";
import { CellError } from "@cell/sdk";

/**
 * Takes an exclusive `flock` on `<dir>/LOCK` and writes this pid into it, or fails with
 * `FAILED_PRECONDITION` naming the holder's pid. The kernel drops the lock when the holder dies,
 * however it dies, so no stale lock survives a crash. Closing the returned file releases it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lockDir } from "./_wal_files.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const lock = await lockDir(dir);
 * await assert.rejects(lockDir(dir), new RegExp(`pid ${Deno.pid}`));
 * lock.close();
 * (await lockDir(dir)).close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function lockDir(dir: string): Promise<Deno.FsFile> {
  const path = join(dir, "LOCK");
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    if (!(await file.tryLock(true))) {
      const holder = (await Deno.readTextFile(path).catch(() => "")).trim() || "unknown";
      throw new CellError(
        "FAILED_PRECONDITION",
        `Cannot open the WAL in "${dir}": it is in use by pid ${holder}; stop that process ` +
          `or use another directory`,
        { details: { dir, pid: Number(holder) || undefined } },
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    return file;
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * Fsyncs a directory, making file creations, renames and removals in it durable.
 *
 * @example
 * ```ts
 * import { syncDir } from "./_wal_files.ts";
 *
 * await syncDir(Deno.cwd());
 * ```
 */
export async function syncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}
