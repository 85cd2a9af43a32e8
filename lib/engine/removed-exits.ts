/**
 * What a removal hands to the container's waiters: its last status (state, exit code, signal,
 * error), left in `<containers>/.removed/<id>-<ms>.json` by whoever removes it (the store, the
 * quick run), before the record goes. A waiter whose container went before it read the exit (it
 * exited and was removed between two of its reads, or by another process) answers with it, as
 * docker's daemon answers `wait` with the removed container's StatusCode. Kept for KEEP_MS: each
 * removal deletes the older ones (the time is in the name, so it reads no file for that).
 */
import { mkdirSync, readdirSync, readFileSync, unlink } from 'node:fs';
// Only what the quick bundles' stand-in for fs/promises has (lib/cli/quick/fs-promises.ts): the quick run imports this file.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFileSync } from '../storage/replace-sync.js';
import type { ContainerRecord } from './records.js';

/** Longer than any waiter takes from the record's removal to its next read. */
export const KEEP_MS = 60_000;

export interface RemovedExit {
  state: ContainerRecord['state'];
  exitCode: number | null;
  signal: string | null;
  error?: string;
}

/** An exit as its watcher saw it (the caller's own child, whose record may still say running). */
export interface ExitStatus {
  exitCode: number | null;
  signal: string | null;
}

const dirOf = (containersDir: string) => join(containersDir, '.removed');

/** Written before the record goes (synchronously: the quick run's store is synchronous, and it is one small file). */
export function leaveExit(containersDir: string, id: string, r: RemovedExit, now = Date.now()): void {
  const dir = dirOf(containersDir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${id}-${now}.json`);
  const exit: RemovedExit = { state: r.state, exitCode: r.exitCode, signal: r.signal, ...(r.error !== undefined ? { error: r.error } : {}) };
  replaceFileSync(file, JSON.stringify(exit), `${file}.tmp`);
}

/** The status the removal of `id` left, if it is still kept. */
export async function removedExit(containersDir: string, id: string): Promise<RemovedExit | undefined> {
  let names: string[];
  try {
    names = readdirSync(dirOf(containersDir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  // The latest, should an id have been removed twice (a record restored by hand).
  const name = names.filter((n) => n.startsWith(`${id}-`) && n.endsWith('.json')).sort().pop();
  if (name === undefined) return undefined;
  try {
    return JSON.parse(readFileSync(join(dirOf(containersDir), name), 'utf8')) as RemovedExit;
  } catch (e) {
    // Swept meanwhile: nothing kept.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Deletes what was left more than KEEP_MS ago (and temp files a crash left). */
export async function sweepExits(containersDir: string, now = Date.now()): Promise<void> {
  const dir = dirOf(containersDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const old = names.filter((n) => {
    const ms = Number(/-(\d+)\.json(?:\.tmp)?$/.exec(n)?.[1]);
    return !Number.isFinite(ms) || now - ms > KEEP_MS;
  });
  const gone = (n: string) => new Promise<void>((resolve, reject) => unlink(join(dir, n), (e) => (e && e.code !== 'ENOENT' ? reject(e) : resolve())));
  await Promise.all(old.map(gone));
}
