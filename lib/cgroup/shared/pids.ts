import path from 'node:path';
import { parseLimit, parseNumber, readOptional, writeValue } from '../cgroupfs.js';
import type { PidsStats } from '../driver.js';
import type { ParsedResources } from '../resources.js';

// pids.max and pids.current have the same names and formats in v1 and v2.

export async function setPids(dir: string, r: ParsedResources): Promise<void> {
  if (r.pids !== undefined) await writeValue(path.join(dir, 'pids.max'), r.pids < 0 ? 'max' : r.pids);
}

export async function pidsStats(dir: string): Promise<PidsStats | undefined> {
  const [current, max] = await Promise.all([readOptional(path.join(dir, 'pids.current')), readOptional(path.join(dir, 'pids.max'))]);
  const c = parseNumber(current);
  if (c === undefined) return undefined;
  return { current: c, limit: parseLimit(max) ?? null };
}
