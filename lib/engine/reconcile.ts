/**
 * Corrects a record that says running (or paused) for a process that is gone: a dead pid, a pid
 * now used by another process (its start time differs), or a shim that recorded the exit in
 * `<bundle>/exit.json`. The supervisor is checked before exit.json, so a shim that writes the file
 * and exits between the two reads is still seen as an exit, never as a death.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { signalName } from '../runtime/signals.js';
import { isCode } from '../storage/errors.js';
import { processStat } from './process-start-time.js';
import type { ContainerRecord, Supervisor } from './records.js';

/** What nsbox-shim writes when its container ends (unknown keys are left to newer shims). */
export const ExitFileSchema = z.object({
  exitCode: z.number().int().nullable().optional(),
  /** A name ('SIGKILL') or a number (9). */
  signal: z.union([z.string().regex(/^(SIG)?[A-Z0-9+-]+$/), z.number().int().min(1).max(64)]).nullable().optional(),
  finishedAt: z.iso.datetime({ offset: true }).optional(),
  oomKilled: z.boolean().optional(),
});
export type ExitFile = z.infer<typeof ExitFileSchema>;

export interface ReconcileEnv {
  now: () => Date;
  /** Where procfs is mounted. */
  proc: string;
}

export const exitFilePath = (bundle: string): string => path.join(bundle, 'exit.json');

async function alive(sup: Supervisor, proc: string): Promise<boolean> {
  const st = await processStat(sup.pid, proc);
  if (!st) return false;
  // A zombie is not reaped yet: its parent (the owner) is about to record the real status.
  return sup.pidStartTime === undefined || st.startTime === sup.pidStartTime;
}

type ExitRead = { ok: true; exit: ExitFile } | { ok: false; why: string } | undefined;

async function readExitFile(bundle: string, startedAt: string | undefined): Promise<ExitRead> {
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
  // Left from an earlier run of the same bundle: not this run's exit.
  if (exit.finishedAt && startedAt && Date.parse(exit.finishedAt) < Date.parse(startedAt)) return undefined;
  return { ok: true, exit };
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
  const r = await readExitFile(sup.bundle, record.startedAt);
  if (r?.ok) {
    const { exit } = r;
    const { error: _, ...rest } = record;
    return {
      ...rest,
      state: 'exited',
      exitCode: exit.exitCode ?? null,
      signal: exit.signal == null ? null : sigName(exit.signal),
      oomKilled: exit.oomKilled ?? false,
      finishedAt: exit.finishedAt ? new Date(exit.finishedAt).toISOString() : env.now().toISOString(),
    };
  }
  if (isAlive) return undefined;
  return dead(r ? r.why : `nsbox-shim (pid ${sup.pid}) is gone and left no exit status in ${exitFilePath(sup.bundle)}`);
}
