/**
 * The state directory of one container, `<root>/<id>/`: `state.json` (what create learned, with
 * the config as created) and `exec.fifo` (there until start: the init blocks on it). The status is
 * never stored: it is read from the kernel each time (the init's pid and start time, the fifo, the
 * freezer), so a reused pid never passes for the init.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { NotFoundError, ValidationError } from '../errors.js';
import { ConfigSchema, type OciConfig } from './config.js';

export const DEFAULT_ROOT = '/run/nsbox-runc';
export const FIFO = 'exec.fifo';
const STATE = 'state.json';

export const StateFileSchema = z.object({
  id: z.string(),
  pid: z.number().int(),
  /** The init's start time (/proc/PID/stat field 22, clock ticks since boot). */
  start: z.number(),
  bundle: z.string(),
  rootfs: z.string(),
  created: z.string(),
  owner: z.string(),
  annotations: z.record(z.string(), z.string()).optional(),
  /** The container's cgroup directories (controller or 'unified' → directory). */
  cgroupPaths: z.record(z.string(), z.string()),
  config: ConfigSchema,
});
export type StateFile = z.output<typeof StateFileSchema>;

export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

const ID = /^[\w+\-.]+$/;

export function checkId(id: string | undefined): string {
  if (!id) throw new ValidationError('container id cannot be empty', 'id');
  if (!ID.test(id) || id === '.' || id === '..') throw new ValidationError(`invalid id format: ${id}`, 'id');
  return id;
}

export const stateDir = (root: string, id: string) => join(root, id);

/** Writes a file through a temp file and rename: a reader sees the old content or the new. */
export function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o644 });
  renameSync(tmp, file);
}

export function saveState(root: string, s: StateFile): void {
  writeAtomic(join(stateDir(root, s.id), STATE), JSON.stringify(s));
}

/** The container's state file; NotFoundError ("container ID does not exist") without one. */
export function loadState(root: string, id: string): StateFile {
  checkId(id);
  let text: string;
  try {
    text = readFileSync(join(stateDir(root, id), STATE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`container ${id} does not exist`);
    throw e;
  }
  return StateFileSchema.parse(JSON.parse(text));
}

export function listIds(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((d) => ID.test(d) && existsSync(join(root, d, STATE)));
}

/** Field 22 of /proc/PID/stat (after the command, which may hold spaces) and the state letter. */
export function procStat(pid: number): { start: number; state: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw e;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, start: Number(rest[19]) };
}

/** Is the init of this state still the process it was (not gone, not a zombie, not a reused pid)? */
export function initAlive(s: Pick<StateFile, 'pid' | 'start'>): boolean {
  const st = procStat(s.pid);
  return st !== undefined && st.start === s.start && st.state !== 'Z' && st.state !== 'X';
}

export function ensureRoot(root: string): void {
  mkdirSync(root, { recursive: true, mode: 0o711 });
}

export type { OciConfig };
