/**
 * Crash-safe writes and cross-process locks. A file is replaced by writing a temp file next to it,
 * fsyncing it, renaming it over the old one and fsyncing the directory: readers see the old or the
 * new content, never a mix, whatever happens. Locks are flock(2) on a lock file, taken with LOCK_NB
 * and tried again when a process closes the lock file (lock-wait.ts): waiting for another process
 * never blocks the event loop, and the lock is taken as soon as its holder lets go.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fsyncSync, openSync, renameSync } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NsboxError } from '../errors.js';
import { native } from '../native.js';
import { fsError, isCode } from './errors.js';
import { flockWhenFree } from './lock-wait.js';

/** fsync a directory, making the renames and creations inside it durable. */
export async function fsyncDirAsync(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncDirAsync on the calling thread (for callers that cannot wait). */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export const tempName = (file: string): string =>
  path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);

/**
 * The first half of writeFileAtomic, for callers that replace several files together: `data` in a
 * temp file next to `file`, fsynced. `commit` renames it over `file` (the caller fsyncs the
 * directory, once for all the files in it), `abort` deletes it.
 */
export async function stageFile(file: string, data: string | Buffer, mode = 0o644): Promise<{ commit(): Promise<void>; abort(): Promise<void> }> {
  const tmp = tempName(file);
  const abort = () => rm(tmp, { force: true });
  try {
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await abort();
    throw fsError(err, 'write', file);
  }
  return {
    // The rename on this thread: one metadata change, which a busy thread pool (the fsyncs of other
    // writes, a shim's spawn) would otherwise keep waiting for milliseconds.
    commit: async () => {
      try {
        renameSync(tmp, file);
      } catch (err) {
        await abort();
        throw fsError(err, 'write', file);
      }
    },
    abort,
  };
}

/** Replaces `file` with `data` atomically and durably: stageFile, commit, then the directory's fsync. */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const staged = await stageFile(file, data, mode);
  await staged.commit();
  try {
    // On the thread pool: a directory fsync takes milliseconds the event loop has better uses for.
    await fsyncDirAsync(path.dirname(file));
  } catch (err) {
    throw fsError(err, 'write', file);
  }
}

/**
 * Replaces `file` with `data` atomically but not durably: temp file, rename, no fsync. For caches,
 * where a crash may lose the update (or, on a file system that does not order the data before the
 * rename, leave the file empty) and the reader takes that as nothing cached.
 */
export async function replaceFile(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = tempName(file);
  try {
    await writeFile(tmp, data, { mode, flag: fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw fsError(err, 'write', file);
  }
}

export interface LockOptions {
  /** LOCK_SH instead of LOCK_EX. */
  shared?: boolean;
  /** Give up after this long (default: wait forever). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

async function openLockFile(file: string): Promise<number> {
  const openIt = () => openSync(file, fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o644);
  try {
    return openIt();
  } catch (err) {
    // Its directory made only when missing: a lock is taken on every change of a store.
    if (!isCode(err, 'ENOENT')) throw fsError(err, 'open lock file', file);
  }
  await mkdir(path.dirname(file), { recursive: true });
  try {
    return openIt();
  } catch (err) {
    throw fsError(err, 'open lock file', file);
  }
}

const lockOp = (shared: boolean | undefined) =>
  (shared ? native.constants.LOCK_SH : native.constants.LOCK_EX) | native.constants.LOCK_NB;

function unlock(fd: number): void {
  try {
    native.flock(fd, native.constants.LOCK_UN);
  } finally {
    closeSync(fd);
  }
}

/**
 * Takes an flock on `file` (created if missing), waiting for it (the event loop runs on; the next
 * try comes at the holder's close) unless `opts.wait` is false; the function that releases it, or
 * undefined when it was held elsewhere and `wait` was false. For a lock held across more than one
 * call; else withLock.
 */
export async function acquireLock(file: string, opts: LockOptions & { wait?: boolean } = {}): Promise<(() => void) | undefined> {
  const fd = await openLockFile(file);
  try {
    if (opts.wait === false) {
      if (native.flock(fd, lockOp(opts.shared))) return () => unlock(fd);
      closeSync(fd);
      return undefined;
    }
    // Woken by the holder's close of the lock file (lock-wait.ts), not by a timer.
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    if (!(await flockWhenFree(fd, file, lockOp(opts.shared), { deadline, signal: opts.signal }))) {
      throw new NsboxError(`lock ${file}: still held by another process after ${opts.timeoutMs} ms`, {
        code: 'ETIMEDOUT',
        path: file,
      });
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return () => unlock(fd);
}

/** Runs `fn` holding an flock on `file` (created if missing); released however `fn` ends. */
export async function withLock<T>(file: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const release = (await acquireLock(file, opts))!;
  try {
    return await fn();
  } finally {
    release();
  }
}

/** Like withLock but never waits: `{ locked: false }` when another holder has it. */
export async function tryLock<T>(
  file: string,
  fn: () => Promise<T> | T,
  opts: { shared?: boolean } = {},
): Promise<{ locked: true; value: T } | { locked: false }> {
  const fd = await openLockFile(file);
  let got: boolean;
  try {
    got = native.flock(fd, lockOp(opts.shared));
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (!got) {
    closeSync(fd);
    return { locked: false };
  }
  try {
    return { locked: true, value: await fn() };
  } finally {
    unlock(fd);
  }
}
