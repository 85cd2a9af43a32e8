/**
 * What the CLI does with a container that `nsbox-shim` supervises (run -d): its bundle keeps the
 * log, the state, the exit status and (cgroup.json) the cgroup paths; its run directory the
 * writable layer. Stopping, killing and removing go through them.
 */
import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { Cgroup } from '../cgroup/cgroup.js';
import type { ContainerRecord } from '../engine/records.js';
import { NsboxError } from '../errors.js';
import { readShimPid, readState, stopDetached } from '../runtime/shim.js';

export const bundleOf = (r: ContainerRecord): string | undefined => (r.supervisor?.kind === 'shim' ? r.supervisor.bundle : undefined);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The container's own pid, as its shim last recorded it (while it runs). */
export function containerPid(bundle: string): number | undefined {
  const pid = readState(bundle)?.pid;
  return pid ? pid : undefined;
}

const alive = (pid: number | undefined) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGTERM to the shim (it sends the stop signal, and no restart follows); SIGKILL after `timeout` s. */
export async function stopShim(bundle: string, timeoutSeconds: number): Promise<void> {
  const pid = containerPid(bundle);
  stopDetached(bundle);
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (Date.now() < deadline && alive(readShimPid(bundle))) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid!, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const hard = Date.now() + 5000;
  while (Date.now() < hard && alive(readShimPid(bundle))) await sleep(50);
}

/** Removes what a detached container left: its cgroup and its run directory (writable layer, bundle). */
export async function cleanupDetached(bundle: string): Promise<void> {
  try {
    const paths = JSON.parse(readFileSync(`${bundle}/cgroup.json`, 'utf8')) as Record<string, string>;
    if (Object.keys(paths).length) await (await Cgroup.open(paths)).remove({ force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof NsboxError && e.code === 'ENOENT')) throw e;
  }
  const runDir = dirname(bundle);
  // Never delete through a mount: the root is mounted only inside the container's namespace.
  if (readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => (l.split(' ')[4] ?? '').startsWith(`${runDir}/`))) {
    throw new NsboxError(`${runDir} still has something mounted under it: not removed`, { code: 'EBUSY', path: runDir });
  }
  rmSync(runDir, { recursive: true, force: true });
}
