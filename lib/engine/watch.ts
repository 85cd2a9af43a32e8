/**
 * What the kernel tells the engine, instead of polling: a process's exit (a pidfd, polled on the
 * event loop), and changes in a directory (inotify, through fs.watch). `until` runs a check at once
 * and again at each wake-up from its sources, one at a time, until it has an answer.
 */
import { closeSync, watch, type FSWatcher } from 'node:fs';
import { NsboxError } from '../errors.js';
import { native } from '../native.js';
import { isCode } from '../storage/errors.js';
import { processStatSync } from './process-start-time.js';

/** Stops a source. */
export type Unwatch = () => void;
/** A source of wake-ups: calls `wake` on each change until unwatched. */
export type Source = (wake: () => void) => Unwatch;

/**
 * Calls `onExit` once the process `pid` exits (at once when it is gone, or when the pid now names
 * another process: one whose start time is not `startTime`). The process need not be our child.
 */
export function onProcessExit(pid: number, startTime: number | undefined, onExit: () => void): Unwatch {
  let fd: number;
  try {
    fd = native.pidfdOpen(pid);
  } catch (e) {
    if (e instanceof NsboxError && e.code === 'ESRCH') {
      queueMicrotask(onExit);
      return () => {};
    }
    throw e;
  }
  // Checked after the pidfd is open: from then on the pid cannot name another process.
  const stat = processStatSync(pid);
  if (!stat || (startTime !== undefined && stat.startTime !== startTime)) {
    closeSync(fd);
    queueMicrotask(onExit);
    return () => {};
  }
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    closeSync(fd);
  };
  // Not our child: waitid answers ECHILD once the pidfd is readable, i.e. once it has exited.
  native.watchExit(fd, () => {
    close();
    onExit();
  });
  return () => {
    if (!open) return;
    native.unwatchExit(fd);
    close();
  };
}

/** A promise of the process's exit (see onProcessExit). */
export function processExit(pid: number, startTime?: number): Promise<void> {
  return new Promise((resolve) => onProcessExit(pid, startTime, resolve));
}

/**
 * inotify on `dir` (its entries: created, renamed over, removed); `wake` gets the entry's name.
 * A directory that is not there (yet, or any more) watches nothing and wakes once.
 */
export function watchDir(dir: string, wake: (name: string | null) => void): Unwatch {
  let w: FSWatcher;
  try {
    w = watch(dir, { persistent: true }, (_event, name) => wake(name));
  } catch (e) {
    if (isCode(e, 'ENOENT', 'ENOTDIR')) {
      queueMicrotask(() => wake(null));
      return () => {};
    }
    throw e;
  }
  // The directory itself removed: one last wake-up, then nothing more comes.
  w.on('error', () => wake(null));
  return () => w.close();
}

/** `watchDir` as a Source, waking only for entries `names` accepts. */
export const dirSource =
  (dir: string, names?: (name: string) => boolean): Source =>
  (wake) =>
    watchDir(dir, (name) => {
      if (!names || name === null || names(name)) wake();
    });

/**
 * Runs `check` now and after each wake-up of a source (never two at once; wake-ups during a check
 * run it once more) until it returns something other than undefined. The sources are taken before
 * the first check, so no change between the two is missed. `signal` gives up (rejects with its reason).
 */
export function until<T>(check: () => Promise<T | undefined>, sources: Source[], signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stops: Unwatch[] = [];
    let running = false;
    let again = false;
    let done = false;
    const finish = (then: () => void) => {
      if (done) return;
      done = true;
      for (const s of stops) s();
      signal?.removeEventListener('abort', onAbort);
      then();
    };
    const onAbort = () => finish(() => reject(signal?.reason ?? new Error('aborted')));
    const run = async () => {
      if (done) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          const r = await check();
          if (r !== undefined) return finish(() => resolve(r));
        } while (again && !done);
      } catch (e) {
        finish(() => reject(e));
      } finally {
        running = false;
      }
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (const s of sources) stops.push(s(() => void run()));
    } catch (e) {
      return finish(() => reject(e));
    }
    void run();
  });
}
