/**
 * The exit of a process that need not be this process's child (a shim, which daemonizes), through
 * a pidfd: once open, the pid cannot name another process. Watched only while someone waits: a
 * watch keeps Node's event loop alive.
 */
import { closeSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { native } from '../native.js';

/** A pidfd of `pid`; undefined when it is gone already. */
export function pidfdOf(pid: number): number | undefined {
  try {
    return native.pidfdOpen(pid);
  } catch (e) {
    if (e instanceof NsboxError && e.code === 'ESRCH') return undefined;
    throw e;
  }
}

/** Resolves once the process behind `fd` has exited, then closes `fd`. */
export function exitOfPidfd(fd: number): Promise<void> {
  // Not our child: waitid answers ECHILD once the pidfd is readable, i.e. once it has exited.
  return new Promise((resolve) =>
    native.watchExit(fd, () => {
      closeSync(fd);
      resolve();
    }),
  );
}
