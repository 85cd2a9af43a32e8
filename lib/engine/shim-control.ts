/**
 * What the engine does to a container that `nsbox-shim` supervises, through its bundle
 * (`<store>/containers/<id>/shim`): the shim's pid and the container's, stopping the shim, and
 * removing the cgroup recorded in `cgroup.json`.
 */
import { readFileSync } from 'node:fs';
import { Cgroup } from '../cgroup/cgroup.js';
import { NsboxError } from '../errors.js';
import { readShimPid, readState, stopDetached } from '../runtime/shim.js';
import type { ContainerRecord } from './records.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const bundleOf = (r: ContainerRecord): string | undefined => (r.supervisor?.kind === 'shim' ? r.supervisor.bundle : undefined);

export function alive(pid: number | undefined): boolean {
  if (!pid || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The container's own pid, as its shim last recorded it (while it runs). */
export function containerPid(bundle: string): number | undefined {
  const pid = readState(bundle)?.pid;
  return pid ? pid : undefined;
}

/** The shim's pid while one runs in the bundle. */
export function liveShim(bundle: string): number | undefined {
  const pid = readShimPid(bundle);
  return alive(pid) ? pid : undefined;
}

/**
 * SIGTERM to the shim (it sends the container's stop signal, SIGKILL after its stop timeout, and
 * restarts nothing); SIGKILL to the container ourselves after `timeoutSeconds`, in case the shim
 * cannot. Resolves once the shim is gone.
 */
export async function stopShim(bundle: string, timeoutSeconds: number): Promise<void> {
  const pid = containerPid(bundle);
  stopDetached(bundle);
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (Date.now() < deadline && liveShim(bundle)) await sleep(25);
  if (alive(pid) && liveShim(bundle)) {
    try {
      process.kill(pid!, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const hard = Date.now() + 5000;
  while (Date.now() < hard && liveShim(bundle)) await sleep(25);
}

/** The cgroup paths the container was placed in (written before its shim started). */
export function cgroupPathsOf(bundle: string): Record<string, string> {
  try {
    return JSON.parse(readFileSync(`${bundle}/cgroup.json`, 'utf8')) as Record<string, string>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
}

/** The container's cgroup, or undefined when it has none (or it is gone). */
export async function cgroupOf(bundle: string): Promise<Cgroup | undefined> {
  const paths = cgroupPathsOf(bundle);
  if (!Object.keys(paths).length) return undefined;
  try {
    return await Cgroup.open(paths);
  } catch (e) {
    if (e instanceof NsboxError && e.code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Kills whatever is left in the container's cgroup (a shim killed -9 leaves its container) and removes it. */
export async function removeCgroup(bundle: string): Promise<void> {
  const cg = await cgroupOf(bundle);
  if (cg) {
    await cg.thaw().catch(() => {});
    await cg.remove({ force: true });
  }
}
