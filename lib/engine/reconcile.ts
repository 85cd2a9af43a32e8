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
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { signalName } from '../runtime/signals.js';
import { isCode } from '../storage/errors.js';
import { processStat } from './process-start-time.js';
import type { ContainerRecord, Supervisor } from './records.js';

/** `<bundle>/exit.json`: the last exit (unknown keys are left to newer shims). */
export const ExitFileSchema = z.object({
  exitCode: z.number().int().nullable().optional(),
  /** A name ('SIGKILL') or a number (9). */
  signal: z.union([z.string().regex(/^(SIG)?[A-Z0-9+-]+$/), z.number().int().min(1).max(64)]).nullable().optional(),
  finishedAt: z.iso.datetime({ offset: true }).optional(),
  oomKilled: z.boolean().optional(),
  /** Why the container could not be (re)started. */
  error: z.string().optional(),
});
export type ExitFile = z.infer<typeof ExitFileSchema>;

/** `<bundle>/state.json`, the shim's view, rewritten at every change. */
export const ShimStateFileSchema = z.object({
  status: z.enum(['running', 'restarting', 'exited', 'stopped']),
  shimPid: z.number().int().positive(),
  restartCount: z.number().int().nonnegative().optional(),
  startedAt: z.iso.datetime({ offset: true }).nullable().optional(),
});
export type ShimStateFile = z.infer<typeof ShimStateFileSchema>;

export interface ReconcileEnv {
  now: () => Date;
  /** Where procfs is mounted. */
  proc: string;
}

export const exitFilePath = (bundle: string): string => path.join(bundle, 'exit.json');
export const shimStateFilePath = (bundle: string): string => path.join(bundle, 'state.json');

async function alive(sup: Supervisor, proc: string): Promise<boolean> {
  const st = await processStat(sup.pid, proc);
  if (!st) return false;
  // A zombie is not reaped yet: its parent (the owner) is about to record the real status.
  return sup.pidStartTime === undefined || st.startTime === sup.pidStartTime;
}

type ExitRead = { ok: true; exit: ExitFile } | { ok: false; why: string } | undefined;

/** Whatever exit.json holds is this shim's: a new shim's bundle starts without one (startDetached). */
async function readExitFile(bundle: string): Promise<ExitRead> {
  const file = exitFilePath(bundle);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
  let exit: ExitFile;
  try {
    exit = ExitFileSchema.parse(JSON.parse(text));
  } catch (err) {
    return { ok: false, why: `${file} is not a valid exit status: ${(err as Error).message.split('\n')[0]}` };
  }
  return { ok: true, exit };
}

/** The shim's state.json, when it is there, valid, and written by this very shim. */
async function readShimState(bundle: string, shimPid: number): Promise<ShimStateFile | undefined> {
  let text: string;
  try {
    text = await readFile(shimStateFilePath(bundle), 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
  let state: ShimStateFile;
  try {
    state = ShimStateFileSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
  // Another shim's (an earlier run in the same bundle): says nothing about this one.
  return state.shimPid === shimPid ? state : undefined;
}

/** The record with the shim's restart count and latest start, or undefined when they agree. */
function synced(record: ContainerRecord, state: ShimStateFile | undefined): ContainerRecord | undefined {
  if (!state) return undefined;
  const restartCount = state.restartCount ?? record.restartCount;
  const startedAt = state.status === 'running' && state.startedAt ? new Date(state.startedAt).toISOString() : record.startedAt;
  if (restartCount === record.restartCount && startedAt === record.startedAt) return undefined;
  return { ...record, restartCount, ...(startedAt === undefined ? {} : { startedAt }) };
}

const sigName = (s: string | number): string => (typeof s === 'number' ? signalName(s) : s.startsWith('SIG') ? s : `SIG${s}`);

/** The corrected record, or undefined when `record` is still true. */
export async function reconcile(record: ContainerRecord, env: ReconcileEnv): Promise<ContainerRecord | undefined> {
  if (record.state !== 'running' && record.state !== 'paused') return undefined;
  const sup = record.supervisor;
  const dead = (error: string): ContainerRecord => ({
    ...record,
    state: 'dead',
    exitCode: null,
    signal: null,
    finishedAt: env.now().toISOString(),
    error,
  });
  if (!sup) return dead('no supervisor was recorded for a running container');
  const isAlive = await alive(sup, env.proc);
  if (sup.kind === 'process') return isAlive ? undefined : dead(`process ${sup.pid} is gone and left no exit status`);
  const state = await readShimState(sup.bundle, sup.pid);
  const done = !isAlive || state?.status === 'exited' || state?.status === 'stopped';
  if (!done) return synced(record, state);
  const r = await readExitFile(sup.bundle);
  if (r?.ok) {
    const { exit } = r;
    const { error: _, ...rest } = synced(record, state) ?? record;
    return {
      ...rest,
      state: 'exited',
      exitCode: exit.exitCode ?? null,
      signal: exit.signal == null ? null : sigName(exit.signal),
      oomKilled: exit.oomKilled ?? false,
      finishedAt: exit.finishedAt ? new Date(exit.finishedAt).toISOString() : env.now().toISOString(),
      ...(exit.error === undefined ? {} : { error: exit.error }),
    };
  }
  // Done by its state, but exit.json is not readable yet: the shim is still writing its files.
  if (isAlive) return synced(record, state);
  return dead(r ? r.why : `nsbox-shim (pid ${sup.pid}) is gone and left no exit status in ${exitFilePath(sup.bundle)}`);
}
