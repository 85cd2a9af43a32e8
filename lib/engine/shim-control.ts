/**
 * What the engine does to a container that `nsbox-shim` supervises, through its bundle
 * (`<store>/containers/<id>/shim`): the shim's pid and the container's, stopping the shim, and
 * removing the cgroup recorded in `cgroup.json`. A pid counts as the shim's only while it names
 * that very process (its start time as recorded, or its command line naming the bundle), never
 * by `kill(pid, 0)`, which a reused pid fools.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { Cgroup } from '../cgroup/cgroup.js';
import { NsboxError } from '../errors.js';
import { BundleFile, bundlePath as bundleFile, readCgroupPaths, readShimPid, readState } from '../runtime/bundle.js';
import { stopDetached } from '../runtime/shim.js';
import { isCode } from '../storage/errors.js';
import { processStatSync } from './process-start-time.js';
import type { ContainerRecord, Supervisor } from './records.js';
import { onProcessExit, watchDir, type Unwatch } from './watch.js';

export const bundleOf = (r: ContainerRecord): string | undefined => (r.supervisor?.kind === 'shim' ? r.supervisor.bundle : undefined);

/** Whether `pid` is the process `startTime` recorded (undefined: any process with that pid). */
export function sameProcess(pid: number, startTime: number | undefined): boolean {
  const st = processStatSync(pid);
  return st !== undefined && st.state !== 'Z' && (startTime === undefined || st.startTime === startTime);
}

/**
 * Whether `pid` runs `nsbox-shim --bundle <bundle>` (the shim keeps its argv when it daemonizes),
 * or is a spare shim given that bundle (`--spare`: its working directory is the bundle).
 */
function isShimOf(pid: number, bundle: string): boolean {
  let argv: string[];
  let cwd: string | undefined;
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (argv.includes('--spare')) cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch (e) {
    if (isCode(e, 'ENOENT', 'ESRCH')) return false;
    throw e;
  }
  const i = argv.indexOf('--bundle');
  return ((i > 0 && argv[i + 1] === bundle) || (cwd !== undefined && path.resolve(cwd) === path.resolve(bundle))) && sameProcess(pid, undefined);
}

/** The container's own pid, as its shim last recorded it (while it runs). */
export function containerPid(bundle: string): number | undefined {
  const pid = readState(bundle)?.pid;
  return pid ? pid : undefined;
}

/**
 * The shim's pid while one runs in the bundle. `sup` (the record's supervisor) names it by pid and
 * start time; without it, the process's command line must name the bundle.
 */
export function liveShim(bundle: string, sup?: Supervisor): number | undefined {
  const pid = readShimPid(bundle);
  if (!pid || !Number.isInteger(pid) || pid <= 0) return undefined;
  if (sup?.kind === 'shim' && sup.pid === pid && sup.pidStartTime !== undefined) return sameProcess(pid, sup.pidStartTime) ? pid : undefined;
  return isShimOf(pid, bundle) ? pid : undefined;
}

/**
 * Resolves when the shim exits (with `startTime`, the process started then; with `exitIn`, its
 * bundle: or as soon as it has recorded its container's exit there, exit.json, which it writes
 * before it lets its clients go and exits), or after `ms` (false then).
 */
export function shimExit(pid: number, ms: number, opts: { startTime?: number | undefined; exitIn?: string | undefined } = {}): Promise<boolean> {
  const { startTime, exitIn } = opts;
  return new Promise((resolve) => {
    const stops: Unwatch[] = [];
    let done = false;
    const finish = (value: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const stop of stops) stop();
      resolve(value);
    };
    const timer = setTimeout(() => finish(false), ms);
    stops.push(onProcessExit(pid, startTime, () => finish(true)));
    if (exitIn !== undefined) {
      const recorded = () => existsSync(bundleFile(exitIn, 'exit')) && finish(true);
      stops.push(watchDir(exitIn, (name) => (name === BundleFile.exit || name === null) && recorded()));
      recorded();
    }
  });
}

/**
 * Resolves once the shim `pid` (started at `startTime`) is done with its container: its process
 * gone, or its pid file removed from `bundle` (or naming another shim), which the shim does once the
 * container has exited for good and an attach client it waited for has had all of its output,
 * before it lets its clients go (up to 2 s, while they close) and exits.
 */
export function shimDone(pid: number, startTime: number | undefined, bundle: string): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const stops: Unwatch[] = [];
    const finish = () => {
      if (done) return;
      done = true;
      for (const stop of stops) stop();
      resolve();
    };
    stops.push(onProcessExit(pid, startTime, finish));
    const check = () => readShimPid(bundle) !== pid && finish();
    stops.push(watchDir(bundle, (name) => (name === BundleFile.shimPid || name === null) && check()));
    check();
  });
}

/**
 * SIGTERM to the shim (it sends the container's stop signal, SIGKILL after its stop timeout, and
 * restarts nothing); SIGKILL to the container ourselves after `timeoutSeconds`, in case the shim
 * cannot. Resolves once the shim is gone (its pidfd says so); with `exitRecorded`, once the shim has
 * recorded the exit after that SIGKILL (for a removal: the container is gone then, its shim only
 * lets its clients go; a shim without a restart policy only, which runs nothing after it).
 */
export async function stopShim(bundle: string, timeoutSeconds: number, sup?: Supervisor, opts: { exitRecorded?: boolean } = {}): Promise<void> {
  const shim = liveShim(bundle, sup);
  if (!shim) return;
  // While its shim lives the container's pid is not reaped, so it still names the container.
  const pid = containerPid(bundle);
  stopDetached(bundle);
  if (await shimExit(shim, timeoutSeconds * 1000)) return;
  if (pid) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      if (!isCode(e, 'ESRCH')) throw e;
    }
  }
  await shimExit(shim, 5000, { exitIn: opts.exitRecorded ? bundle : undefined });
}

/** The cgroup paths the container was placed in (written before its shim started). */
export const cgroupPathsOf = readCgroupPaths;

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

/** Kills whatever is left in the cgroup (a shim killed -9 leaves its container) and removes it. */
export async function removeCgroupOf(cg: Cgroup | undefined): Promise<void> {
  if (!cg) return;
  try {
    await cg.thaw();
  } catch (e) {
    // v1 without a freezer hierarchy, or removed meanwhile: nothing is frozen then.
    if (!(e instanceof NsboxError && (e.code === 'ENOENT' || e.code === 'ENOTSUP'))) throw e;
  }
  await cg.remove({ force: true });
}

/** removeCgroupOf the cgroup recorded in the bundle. */
export async function removeCgroup(bundle: string): Promise<void> {
  await removeCgroupOf(await cgroupOf(bundle));
}
