/**
 * Corrects a record that says running (or paused) for a process that is gone: a dead pid, a pid
 * now used by another process (its start time differs), or a shim that is done with its container.
 *
 * nsbox-shim's bundle is the contract (cpp/shim/main.cc): `state.json` ({status, shimPid,
 * restartCount, startedAt, …}) and `exit.json` ({exitCode, signal, finishedAt, error?}), each
 * replaced atomically. While the shim lives, only its state says the container is done ('exited' or
 * 'stopped'): between restarts exit.json holds the last run's exit while the container will run
 * again. Once the shim is gone, exit.json is the final status. The shim is checked before the files
 * are read, so one that writes them and exits in between is still seen as an exit, not a death.
 *
 * The shim's files are read through `ShimFileReaders`: reconcile.ts gives the schemas' readers;
 * `nsbox ps` (container-list.ts) gives readers without a schema library that refuse anything unusual.
 */
import { isoString } from '../iso-time.js';
import { bundlePath } from '../runtime/bundle-files.js';
import type { ShimExit, ShimState } from '../runtime/bundle.js';
import { signalName } from '../runtime/signals.js';
import { processStatSync } from './process-start-time.js';
import type { ContainerSummary, Supervisor } from './record-summary.js';

export interface ReconcileEnv {
  now: () => Date;
  /** Where procfs is mounted. */
  proc: string;
}

/** exit.json read: the exit, or why the file there is not one; undefined when there is none. */
export type ExitRead = { ok: true; exit: ShimExit } | { ok: false; why: string } | undefined;

export interface ShimFileReaders {
  exit(bundle: string): ExitRead | Promise<ExitRead>;
  /** state.json when it is there and is a state the shim wrote (else undefined: it says nothing). */
  state(bundle: string): ShimState | undefined | Promise<ShimState | undefined>;
}

export const exitFilePath = (bundle: string): string => bundlePath(bundle, 'exit');

function alive(sup: Supervisor, proc: string): boolean {
  const st = processStatSync(sup.pid, proc);
  if (!st) return false;
  // A zombie is not reaped yet: its parent (the owner) is about to record the real status. Not so
  // a shim's: its parent is init, and a zombie shim has written all it ever will (kill -9).
  if (st.state === 'Z' && sup.kind === 'shim') return false;
  return sup.pidStartTime === undefined || st.startTime === sup.pidStartTime;
}

/** The record with the shim's restart count and latest start, or undefined when they agree. */
function synced<R extends ContainerSummary>(record: R, state: ShimState | undefined): R | undefined {
  if (!state) return undefined;
  const restartCount = state.restartCount ?? record.restartCount;
  const startedAt = state.status === 'running' && state.startedAt ? isoString(new Date(state.startedAt)) : record.startedAt;
  if (restartCount === record.restartCount && startedAt === record.startedAt) return undefined;
  return { ...record, restartCount, ...(startedAt === undefined ? {} : { startedAt }) };
}

const sigName = (s: string | number): string => (typeof s === 'number' ? signalName(s) : s.startsWith('SIG') ? s : `SIG${s}`);

/**
 * reconcile (reconcile.ts) with the shim's files read by `files`: the corrected record, or
 * undefined when `record` is still true.
 */
export async function reconcileWith<R extends ContainerSummary>(record: R, env: ReconcileEnv, files: ShimFileReaders): Promise<R | undefined> {
  if (record.state !== 'running' && record.state !== 'paused') return undefined;
  const sup = record.supervisor;
  const dead = (error: string): R => ({
    ...record,
    state: 'dead',
    exitCode: null,
    signal: null,
    finishedAt: isoString(env.now()),
    error,
  });
  if (!sup) return dead('no supervisor was recorded for a running container');
  const isAlive = alive(sup, env.proc);
  if (sup.kind === 'process') return isAlive ? undefined : dead(`process ${sup.pid} is gone and left no exit status`);
  const read = await files.state(sup.bundle);
  // Another shim's (an earlier run in the same bundle): says nothing about this one.
  const state = read?.shimPid === sup.pid ? read : undefined;
  const done = !isAlive || state?.status === 'exited' || state?.status === 'stopped';
  if (!done) return synced(record, state);
  const r = await files.exit(sup.bundle);
  if (r?.ok) {
    const { exit } = r;
    const { error: _, ...rest } = synced(record, state) ?? record;
    return {
      ...rest,
      state: 'exited',
      exitCode: exit.exitCode,
      signal: exit.signal === null ? null : sigName(exit.signal),
      oomKilled: exit.oomKilled,
      finishedAt: isoString(new Date(exit.finishedAt)),
      ...(exit.error === undefined ? {} : { error: exit.error }),
    } as R;
  }
  // Done by its state, but exit.json is not readable yet: the shim is still writing its files.
  if (isAlive) return synced(record, state);
  return dead(r ? r.why : `nsbox-shim (pid ${sup.pid}) is gone and left no exit status in ${exitFilePath(sup.bundle)}`);
}
