import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { isCode, parseFlatKeyed, parsePids, readOptional, readText, walkDeepestFirst, writeValue } from '../cgroupfs.js';
import type { CgroupEvent, KillOptions } from '../driver.js';
import { killByFreezing, untilChanged } from '../kill.js';
import { watchOrPoll } from '../watch.js';

// The cgroup2 core files every non-root cgroup has, with or without controllers. The v2 driver uses
// them, and so does the v1 driver for its unified twin on hybrid hosts.

export async function cgroupEvents(dir: string): Promise<Record<string, number>> {
  return parseFlatKeyed(await readOptional(path.join(dir, 'cgroup.events')));
}

export async function populated(dir: string): Promise<boolean> {
  return (await cgroupEvents(dir)).populated === 1;
}

export async function procsV2(dir: string): Promise<number[]> {
  return parsePids(await readText(path.join(dir, 'cgroup.procs'))).sort((a, b) => a - b);
}

/** Every pid in `dir` and its sub-cgroups. */
export async function procsRecursive(dir: string): Promise<number[]> {
  const all = await Promise.all((await walkDeepestFirst(dir)).map((d) => readOptional(path.join(d, 'cgroup.procs'))));
  return [...new Set(all.flatMap(parsePids))].sort((a, b) => a - b);
}

/** Frozen, or asked to freeze (cgroup.freeze; cgroup.events says when every task is). */
export async function frozenV2(dir: string): Promise<boolean> {
  return (await cgroupEvents(dir)).frozen === 1 || (await readOptional(path.join(dir, 'cgroup.freeze')))?.trim() === '1';
}

/** Writes cgroup.freeze and waits until cgroup.events reports the new state for the whole subtree. */
export async function setFrozenV2(dir: string, frozen: boolean, timeoutMs = 10_000): Promise<void> {
  await writeValue(path.join(dir, 'cgroup.freeze'), frozen ? 1 : 0);
  await untilChanged(path.join(dir, 'cgroup.events'), async () => ((await cgroupEvents(dir)).frozen === 1) === frozen, timeoutMs, `${dir} to ${frozen ? 'freeze' : 'thaw'}`);
}

/** Whether this kernel has cgroup.kill (5.14+). */
export async function hasKillFile(dir: string): Promise<boolean> {
  // cgroup.kill is write-only: look at the directory listing rather than reading it.
  try {
    return (await readdir(dir)).includes('cgroup.kill');
  } catch (e) {
    // A cgroup that is gone has no processes to kill either.
    if (isCode(e, 'ENOENT')) return false;
    throw e;
  }
}

/** SIGKILLs the whole subtree: atomically through cgroup.kill, else freeze + kill + thaw. */
export async function killV2(dir: string, options: KillOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (await hasKillFile(dir)) {
    await writeValue(path.join(dir, 'cgroup.kill'), 1);
    await untilChanged(path.join(dir, 'cgroup.events'), async () => !(await populated(dir)), timeoutMs, `the processes of ${dir} to exit`);
    return;
  }
  await killByFreezing(
    { freeze: () => setFrozenV2(dir, true, timeoutMs), thaw: () => setFrozenV2(dir, false, timeoutMs), allProcs: () => procsRecursive(dir) },
    timeoutMs,
    dir,
  );
}

/** 'empty' each time cgroup.events goes from populated 1 to populated 0. */
export function watchEmptyV2(dir: string, emit: (e: CgroupEvent) => void, intervalMs: number, onError: (err: unknown) => void): () => void {
  let last: boolean | undefined;
  const file = path.join(dir, 'cgroup.events');
  return watchOrPoll(
    file,
    async () => {
      const text = await readOptional(file);
      if (text === undefined) return;
      const now = parseFlatKeyed(text).populated === 1;
      if (last === true && !now) emit({ type: 'empty' });
      last = now;
    },
    intervalMs,
    onError,
  );
}

/** 'oom' each time memory.events' oom_kill counter grows. */
export function watchOomV2(dir: string, emit: (e: CgroupEvent) => void, intervalMs: number, onError: (err: unknown) => void): () => void {
  let last: number | undefined;
  const file = path.join(dir, 'memory.events');
  return watchOrPoll(
    file,
    async () => {
      const text = await readOptional(file);
      if (text === undefined) return;
      const kills = parseFlatKeyed(text).oom_kill ?? 0;
      if (last !== undefined && kills > last) emit({ type: 'oom', oomKills: kills });
      last = kills;
    },
    intervalMs,
    onError,
  );
}
