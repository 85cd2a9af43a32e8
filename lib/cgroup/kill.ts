import { closeSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { native } from '../native.js';
import { isCode, sleep } from './cgroupfs.js';
import { watchOrPoll } from './watch.js';

const timedOut = (timeoutMs: number, what: string) => new NsboxError(`timed out after ${timeoutMs} ms waiting for ${what}`, { code: 'ETIMEDOUT' });

/**
 * Polls `done` until it returns true, backing off from 5 ms to 50 ms; throws ETIMEDOUT after
 * `timeoutMs`. Only for what the kernel tells of no other way (cgroup v1's freezer.state).
 */
export async function waitUntil(done: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(50, delay * 2)) {
    if (await done()) return;
    if (Date.now() > deadline) throw timedOut(timeoutMs, what);
    await sleep(delay);
  }
}

/**
 * Checks `done` now and at each change of `file` (inotify: a cgroup2 cgroup.events is modified
 * when its populated or frozen state changes), with a check a second as a safety net, until it
 * returns true; ETIMEDOUT after `timeoutMs`.
 */
export function untilChanged(file: string, done: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let stop: (() => void) | undefined;
    let settled = false;
    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop?.();
      if (err === undefined) resolve();
      else reject(err);
    };
    const timer = setTimeout(() => finish(timedOut(timeoutMs, what)), timeoutMs);
    stop = watchOrPoll(file, async () => {
      if (await done()) finish();
    }, 1000, finish);
    if (settled) stop();
  });
}

/**
 * Resolves once each of `pids` has exited (a pidfd of each, polled on the event loop; nothing is
 * reaped: a child of this process is still its own watcher's), or after `timeoutMs`.
 */
export async function exitsOf(pids: number[], timeoutMs: number): Promise<void> {
  const fds: number[] = [];
  for (const pid of pids) {
    try {
      fds.push(native.pidfdOpen(pid));
    } catch (err) {
      // gone already
      if (!isCode(err, 'ESRCH')) throw err;
    }
  }
  if (fds.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(fds.map((fd) => new Promise<void>((resolve) => native.watchExit(fd, () => resolve(), { reap: false })))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
    for (const fd of fds) {
      native.unwatchExit(fd);
      closeSync(fd);
    }
  }
}

export function sigkill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export interface FreezeKillOps {
  freeze?: () => Promise<void>;
  thaw?: () => Promise<void>;
  /** Every pid in the cgroup and its sub-cgroups. */
  allProcs: () => Promise<number[]>;
}

/**
 * Kills every process where the kernel has no cgroup.kill: freeze so nothing can fork, SIGKILL each
 * pid, thaw so the frozen tasks act on the signal, wait for those killed to exit (their pidfds),
 * and repeat until the cgroup is empty. Without a freezer the loop still ends: each round kills
 * what the last one missed.
 */
export async function killByFreezing(ops: FreezeKillOps, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await ops.allProcs();
    if (pids.length === 0) return;
    const left = deadline - Date.now();
    if (left <= 0) throw timedOut(timeoutMs, `the processes of ${what} to exit`);
    // A freeze that fails (or does not settle in time) only lets a fork slip by: this round's
    // SIGKILLs still go out and the next round catches the rest. It is told, not hidden.
    if (ops.freeze) await ops.freeze().catch((err: unknown) => process.emitWarning(`${what}: freezing before the kill: ${(err as Error).message}`, { code: 'NSBOX_CGROUP_FREEZE' }));
    let killed: number[] = [];
    try {
      killed = await ops.allProcs();
      for (const pid of killed) sigkill(pid);
    } finally {
      if (ops.thaw) await ops.thaw();
    }
    await exitsOf(killed, left);
  }
}
