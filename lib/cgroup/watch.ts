import { watch, type FSWatcher } from 'node:fs';
import { isCode } from '../errors.js';

/**
 * Runs `check` whenever `file` changes (inotify through fs.watch: cgroupfs signals IN_MODIFY on
 * cgroup.events and memory.events) and every `intervalMs` as a safety net, or only by polling when
 * `file` is undefined. Checks never overlap; errors in a check are passed to `onError`.
 * Returns the function that stops watching.
 */
export function watchOrPoll(file: string | undefined, check: () => Promise<void>, intervalMs: number, onError: (err: unknown) => void): () => void {
  let running = false;
  let again = false;
  let stopped = false;
  const run = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    check()
      .catch(onError)
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          run();
        }
      });
  };
  let watcher: FSWatcher | undefined;
  if (file !== undefined) {
    try {
      watcher = watch(file, { persistent: true }, run);
      watcher.on('error', () => watcher?.close());
    } catch (err) {
      // No inotify here (ENOSYS), or no watch left for this user (ENOSPC, EMFILE): the poll below
      // still sees every change. Anything else is reported, and polled all the same.
      if (!isCode(err, 'ENOSYS', 'ENOSPC', 'EMFILE')) onError(err);
    }
  }
  const timer = setInterval(run, intervalMs);
  run();
  return () => {
    stopped = true;
    watcher?.close();
    clearInterval(timer);
  };
}
