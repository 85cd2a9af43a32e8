/** A container's status from the kernel, its runc-shaped state, and waiting for its init to go. */
import { closeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupDriver } from '../cgroup/index.js';
import { NotFoundError } from '../errors.js';
import { native } from '../native.js';
import { openCgroup } from './cgroup.js';
import type { OciState } from './hooks.js';
import { FIFO, initAlive, stateDir, type StateFile, type Status } from './state.js';

export async function frozen(cg: CgroupDriver | undefined): Promise<boolean> {
  if (!cg) return false;
  try {
    return await cg.frozen();
  } catch (e) {
    if (e instanceof NotFoundError) return false; // the cgroup is gone with its processes
    throw e;
  }
}

export async function statusOf(root: string, s: StateFile): Promise<Status> {
  if (!initAlive(s)) return 'stopped';
  if (existsSync(join(stateDir(root, s.id), FIFO))) return 'created';
  return (await frozen(await openCgroup(s.cgroupPaths))) ? 'paused' : 'running';
}

/** runc's `state` output (and what hooks read on stdin). */
export function ociState(s: StateFile, status: Status): OciState {
  return {
    ociVersion: s.config.ociVersion,
    id: s.id,
    pid: status === 'stopped' ? 0 : s.pid,
    status,
    bundle: s.bundle,
    rootfs: s.rootfs,
    created: s.created,
    owner: s.owner,
    ...(s.annotations ? { annotations: s.annotations } : {}),
  };
}

/** Resolves when the process behind `pid` (checked against its start time first) has exited. */
export function waitGone(s: Pick<StateFile, 'pid' | 'start'>): Promise<void> {
  return watchGone(s).gone;
}

/**
 * `gone` resolves when the process has exited; `stop()` ends the watch (and closes its pidfd)
 * without waiting. When the process is this process's child, the watch reaps it.
 */
export function watchGone(s: Pick<StateFile, 'pid' | 'start'>): { gone: Promise<void>; stop: () => void } {
  const done = { gone: Promise.resolve(), stop: () => undefined };
  if (!initAlive(s)) return done;
  let pidfd: number;
  try {
    pidfd = native.pidfdOpen(s.pid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return done;
    throw e;
  }
  // The pid was checked before the pidfd was taken: if it was reused in between, it is not ours.
  if (!initAlive(s)) {
    closeSync(pidfd);
    return done;
  }
  const gone = new Promise<void>((resolve) => native.watchExit(pidfd, () => {
    closeSync(pidfd);
    resolve();
  }));
  return {
    gone,
    stop: () => {
      if (native.unwatchExit(pidfd)) closeSync(pidfd);
    },
  };
}
