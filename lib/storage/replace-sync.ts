/**
 * A small file replaced at once on the calling thread, without fsync: written under `tmp` (made
 * new, never followed through a link), then renamed over `file`; on failure the temp file goes.
 * For the quick commands' store and the removal's exit hand-over, which write one small file and
 * cannot wait (atomic.ts has the durable, asynchronous kind).
 */
import { closeSync, constants as fsc, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

export function replaceFileSync(file: string, text: string, tmp: string): void {
  try {
    const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644);
    try {
      writeFileSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // never made
    }
    throw e;
  }
}
