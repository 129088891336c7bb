/**
 * One nucleus per Cell home: {@linkcode acquireNucleusLock} holds an exclusive `flock` on
 * `$CELL_HOME/run/nucleus.lock`, which records the holder's pid. The kernel drops the lock when
 * its process dies, however it dies, so a nucleus killed with `kill -9` leaves no lock that
 * blocks the next one: the file stays, naming a dead pid, and is taken over.
 *
 * @module
 */
import { join } from "node:path";
import { CellError, ensurePrivateDir, runDir } from "@cell/sdk";

/** What the lock file says about its holder. */
export interface LockHolder {
  /** The holder's process id. */
  pid: number;
  /** When it took the lock, in ms since the epoch. */
  started_at_ms: number;
}

/** A held nucleus lock. */
export interface NucleusLock extends AsyncDisposable {
  /** The lock file. */
  readonly path: string;
  /** The previous holder, when this lock was taken over from a process that died holding it. */
  readonly takenOverFrom: LockHolder | undefined;
  /** Removes the lock file and releases the lock. */
  release(): Promise<void>;
}

/** The nucleus lock file of a Cell home: `<home>/run/nucleus.lock`. */
export function nucleusLockPath(home: string): string {
  return join(runDir(home), "nucleus.lock");
}

async function readHolder(file: Deno.FsFile): Promise<LockHolder | undefined> {
  try {
    // Read by hand: `file.readable` would close the file, and with it the lock.
    await file.seek(0, Deno.SeekMode.Start);
    const buffer = new Uint8Array(1024);
    let length = 0;
    for (let n = await file.read(buffer); n !== null && length < buffer.length;) {
      length += n;
      n = await file.read(buffer.subarray(length));
    }
    const value: unknown = JSON.parse(new TextDecoder().decode(buffer.subarray(0, length)));
    if (typeof value === "object" && value !== null && "pid" in value) {
      const { pid, started_at_ms } = value as Record<string, unknown>;
      if (typeof pid === "number") {
        return { pid, started_at_ms: typeof started_at_ms === "number" ? started_at_ms : 0 };
      }
    }
  } catch {
    // Empty or torn: written by a holder that died while writing it.
  }
  return undefined;
}

async function holderOf(path: string): Promise<LockHolder | undefined> {
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { read: true });
    return await readHolder(file);
  } catch {
    return undefined;
  } finally {
    file?.close();
  }
}

/**
 * Takes the nucleus lock of `home`, or fails with `ALREADY_EXISTS` naming the pid of the
 * nucleus that holds it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { acquireNucleusLock } from "@cell/nucleus";
 *
 * const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-" });
 * const lock = await acquireNucleusLock(home);
 * const second = await acquireNucleusLock(home).catch((e) => e);
 * assert.ok(String(second).includes("already running"));
 * await lock.release();
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export async function acquireNucleusLock(home: string): Promise<NucleusLock> {
  await ensurePrivateDir(runDir(home));
  const path = nucleusLockPath(home);
  for (let attempt = 0; attempt < 10; attempt++) {
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    if (!(await file.tryLock(true))) {
      file.close();
      const holder = await holderOf(path);
      throw new CellError(
        "ALREADY_EXISTS",
        `A nucleus is already running on ${home} (pid ${holder?.pid ?? "unknown"}): use it, ` +
          `stop it first (kill ${holder?.pid ?? "<pid>"}), or set CELL_HOME to another directory`,
        { details: { home, ...holder } },
      );
    }
    // The previous holder may have removed the file between our open and our lock: then we
    // hold a lock on a file nobody else will ever open. Start over on the new file.
    const current = await Deno.stat(path).catch(() => undefined);
    if (current?.ino !== (await file.stat()).ino) {
      file.close();
      continue;
    }
    const previous = await readHolder(file).catch(() => undefined);
    const reopened = await Deno.open(path, { write: true, truncate: true });
    const holder: LockHolder = { pid: Deno.pid, started_at_ms: Date.now() };
    await reopened.write(new TextEncoder().encode(`${JSON.stringify(holder)}\n`));
    reopened.close();
    let released: Promise<void> | undefined;
    const release = () => {
      released ??= (async () => {
        await Deno.remove(path).catch(() => {});
        try {
          file.close();
        } catch {
          // Already closed.
        }
      })();
      return released;
    };
    return {
      path,
      takenOverFrom: previous?.pid === Deno.pid ? undefined : previous,
      release,
      [Symbol.asyncDispose]: release,
    };
  }
  throw new CellError(
    "ABORTED",
    `Could not take the nucleus lock ${path}: other processes keep replacing it; try again`,
  );
}
