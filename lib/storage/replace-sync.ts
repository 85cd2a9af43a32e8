/**
 * A small file replaced at once on the calling thread, without fsync: written under `tmp` (made
 * new, never followed through a link), then renamed over `file` (or swapped with it); on failure
 * the temp file goes.
 * For the quick commands' store and the removal's exit hand-over, which write one small file and
 * cannot wait (atomic.ts has the durable, asynchronous kind).
 */
import { closeSync, constants as fsc, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { isCode } from '../errors.js';
import { native } from '../native.js';

/** `tmp` made new and written; on failure nothing of it is left (a name someone else holds is left alone). */
function writeNew(tmp: string, text: string): void {
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644);
  try {
    writeFileSync(fd, text);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
}

export function replaceFileSync(file: string, text: string, tmp: string): void {
  replaceWith(file, text, tmp, () => renameSync(tmp, file));
}

/**
 * replaceFileSync for a file that exists (ENOENT otherwise), without the write-back a rename over
 * it starts: the two names are swapped in one step (renameat2 RENAME_EXCHANGE, through the addon),
 * then the old content, now under `tmp`, is unlinked. ext4 (auto_da_alloc) flushes the new file of
 * a rename over an existing one, and a later unlink of it waits for that write to end (0.5 ms, and
 * up to 30 ms while other processes fsync); a file swapped in is written back in ext4's own time. So
 * a crash of the machine may leave it empty: for files nothing needs after such a crash.
 * `exchange`: the swap (the addon's; a test passes one that fails as NFS's does).
 */
export function exchangeFileSync(file: string, text: string, tmp: string, exchange: (a: string, b: string) => void = native.renameExchange): void {
  replaceWith(file, text, tmp, () => {
    try {
      exchange(tmp, file);
    } catch (e) {
      // A filesystem without the exchange (NFS, some FUSE ones): renamed over, as replaceFileSync.
      if (!isCode(e, 'EINVAL', 'ENOSYS', 'EOPNOTSUPP')) throw e;
      renameSync(tmp, file);
    }
  });
  try {
    unlinkSync(tmp);
  } catch {
    // the old content left under a temp name, which the store's repair removes
  }
}

function replaceWith(file: string, text: string, tmp: string, put: () => void): void {
  writeNew(tmp, text);
  try {
    put();
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw e;
  }
}
