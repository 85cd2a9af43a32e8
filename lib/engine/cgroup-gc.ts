/**
 * The engine's cgroup garbage collection, part of its prune (so the CLI's `system prune` and the
 * API's prune both do it): the empty cgroups beneath nsbox's parents that crashed processes left
 * (Cgroup.prune: only nsbox-named ones, only empty ones, none younger than its minimum age).
 */
import { Cgroup } from '../cgroup/cgroup.js';
import { NsboxError } from '../errors.js';
import type { EngineContext } from './engine-context.js';

/** The parents to look under: the default one and each one a container of the store names. */
export async function cgroupParentsOf(ctx: EngineContext): Promise<Array<string | undefined>> {
  const named = (await ctx.store.list({ all: true })).map((r) => r.options.cgroupParent).filter((p): p is string => p !== undefined);
  return [undefined, ...new Set(named)];
}

/** Removes the leftovers beneath each parent (and the parent itself once empty); returns their directories. */
export async function pruneEmptyCgroups(ctx: EngineContext, parents: Array<string | undefined>): Promise<string[]> {
  const removed: string[] = [];
  for (const parent of parents) {
    try {
      removed.push(...(await Cgroup.prune({ includeParent: true, ...(parent !== undefined ? { parent } : {}) })));
    } catch (e) {
      // A caller that may not write its cgroups (rootless without delegation) has nothing to collect.
      if (e instanceof NsboxError && ['EACCES', 'EPERM', 'EROFS'].includes(e.code)) continue;
      ctx.warn(`pruning the empty cgroups under ${parent ?? 'the default parent'}`, e);
    }
  }
  return removed;
}
