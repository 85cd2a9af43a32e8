import { rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { cgroupFsError, isCode, walkDeepestFirst } from './cgroupfs.js';
import type { CgroupDriver } from './driver.js';

export interface PruneOptions {
  /** Leave cgroups created less than this long ago: a spawner may be about to place a process (default 10 s). */
  minAgeMs?: number;
  /** Also remove the parent directory itself when it is empty and nsbox-named (default false). */
  includeParent?: boolean;
}

export interface PruneScope {
  /** The parent as the caller named it says 'nsbox': everything beneath it is nsbox's. */
  parentIsNsbox: boolean;
}

/**
 * Removes the empty nsbox-named cgroups beneath the parent that `parentDriver` addresses, in every
 * hierarchy, deepest first. A cgroup with processes (or with a sub-cgroup that has some) is kept:
 * the kernel refuses the rmdir. Returns the directories removed.
 */
export async function pruneCgroups(parentDriver: CgroupDriver, scope: PruneScope, options: PruneOptions = {}): Promise<string[]> {
  const minAge = options.minAgeMs ?? 10_000;
  const removed: string[] = [];
  for (const top of new Set(Object.values(parentDriver.paths))) {
    for (const dir of await walkDeepestFirst(top)) {
      // Only what nsbox made: create() puts 'nsbox' in the parent or in the name below it.
      if (dir === top ? !(options.includeParent && scope.parentIsNsbox) : !(scope.parentIsNsbox || path.relative(top, dir).includes('nsbox'))) continue;
      try {
        if (minAge > 0 && Date.now() - (await stat(dir)).mtimeMs < minAge) continue;
        await rmdir(dir);
        removed.push(dir);
      } catch (err) {
        if (isCode(err, 'ENOENT', 'EBUSY', 'ENOTEMPTY')) continue;
        throw cgroupFsError(err, 'rmdir', dir);
      }
    }
  }
  return removed;
}
