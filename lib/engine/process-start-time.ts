/**
 * A process's identity over time: a pid is reused once its process is reaped, but its start time
 * (field 22 of /proc/PID/stat, clock ticks after boot) is not, so pid + start time names one process.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isCode } from '../storage/errors.js';

export interface ProcessStat {
  /** Field 3: R, S, D, Z (zombie), T, … */
  state: string;
  /** Field 22. */
  startTime: number;
}

/** Fields of /proc/PID/stat, or undefined when no such process exists. */
export async function processStat(pid: number, proc = '/proc'): Promise<ProcessStat | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(proc, String(pid), 'stat'), 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ESRCH')) return undefined;
    throw err;
  }
  return parseStat(text, `${proc}/${pid}/stat`);
}

function parseStat(text: string, file: string): ProcessStat {
  // Field 2 is the command in parentheses and may itself hold spaces and ")": split after the last one.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const startTime = Number(rest[19]);
  if (rest[0] === undefined || !Number.isSafeInteger(startTime)) throw new Error(`unexpected ${file}: ${text}`);
  return { state: rest[0], startTime };
}

/** The start time to record with a pid (undefined when the process is already gone). */
export async function processStartTime(pid: number, proc = '/proc'): Promise<number | undefined> {
  return (await processStat(pid, proc))?.startTime;
}

/** processStat, synchronously (for a check right after a pidfd is opened). */
export function processStatSync(pid: number, proc = '/proc'): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(proc, String(pid), 'stat'), 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ESRCH')) return undefined;
    throw err;
  }
  return parseStat(text, `${proc}/${pid}/stat`);
}
