import { NsboxError } from '../errors.js';
import { sleep } from './cgroupfs.js';

/** Polls `done` until it returns true, backing off from 5 ms to 50 ms; throws ETIMEDOUT after `timeoutMs`. */
export async function waitUntil(done: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(50, delay * 2)) {
    if (await done()) return;
    if (Date.now() > deadline) throw new NsboxError(`timed out after ${timeoutMs} ms waiting for ${what}`, { code: 'ETIMEDOUT' });
    await sleep(delay);
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
 * pid, thaw so the frozen tasks act on the signal, and repeat until the cgroup is empty. Without a
 * freezer the loop still ends: each round kills what the last one missed.
 */
export async function killByFreezing(ops: FreezeKillOps, timeoutMs: number, what: string): Promise<void> {
  await waitUntil(
    async () => {
      const pids = await ops.allProcs();
      if (pids.length === 0) return true;
      // A freeze that fails (or does not settle in time) only lets a fork slip by: this round's
      // SIGKILLs still go out and the next round catches the rest. It is told, not hidden.
      if (ops.freeze) await ops.freeze().catch((err: unknown) => process.emitWarning(`${what}: freezing before the kill: ${(err as Error).message}`, { code: 'NSBOX_CGROUP_FREEZE' }));
      try {
        for (const pid of await ops.allProcs()) sigkill(pid);
      } finally {
        if (ops.thaw) await ops.thaw();
      }
      return (await ops.allProcs()).length === 0;
    },
    timeoutMs,
    `the processes of ${what} to exit`,
  );
}
