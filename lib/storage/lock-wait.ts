/**
 * The wait for a store lock (flock) that another process holds: woken when a process closes the
 * lock file (inotify's IN_CLOSE, native.watchClose). Every holder of ours closes the file as it
 * lets go, and the kernel closes the files of a holder that dies, so the next try comes when the
 * lock is free, not on a timer. Without inotify (its instances used up) it tries again with a
 * backoff from 1 to 50 ms, as before.
 */
import { native } from '../native.js';

/**
 * A check once a second while watching, in case the file is let go without a close this process
 * can see (a holder that unlocks and keeps it open, which nsbox never does).
 */
const RECHECK_MS = 1000;

/**
 * flock(fd, op) (op with LOCK_NB), waiting until it is taken: true; false once `deadline`
 * (Date.now() time) has passed; the signal's reason thrown when it is aborted.
 */
export async function flockWhenFree(fd: number, file: string, op: number, o: { deadline: number; signal?: AbortSignal | undefined }): Promise<boolean> {
  if (native.flock(fd, op)) return true;
  let wake: (() => void) | undefined;
  let handle: number | undefined;
  try {
    handle = native.watchClose(file, () => wake?.());
  } catch {
    // no inotify instance left for this user: the backoff below
  }
  try {
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      // Tried again once the watch is set: a close between the first try and the watch is not missed.
      if (native.flock(fd, op)) return true;
      o.signal?.throwIfAborted();
      const left = o.deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          wake = undefined;
          o.signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(handle === undefined ? delay : RECHECK_MS, left));
        wake = done;
        o.signal?.addEventListener('abort', done);
      });
    }
  } finally {
    if (handle !== undefined) native.unwatchClose(handle);
  }
}
