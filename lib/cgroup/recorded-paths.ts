import { posix as path } from 'node:path';
import type { CgroupLayout } from './detect.js';

/**
 * Cgroup directories read back from a file nsbox wrote (a foreground run's record, an SDK owner
 * note), checked before anything is killed or removed by them: `{ controller: directory }`, each
 * directory inside that controller's hierarchy, without '..', with 'nsbox' in its path (every
 * cgroup nsbox makes has it, cgroupPathFor) and, when `leaf` is given, named `leaf` or
 * `nsbox-<leaf>` (a container's cgroup is named by its id). Anything else is undefined: the caller
 * finds the cgroup another way, and a record edited by hand cannot point a removal at a cgroup
 * nsbox did not make.
 */
export function recordedCgroupPaths(v: unknown, layout: CgroupLayout, leaf?: string): Record<string, string> | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const e = Object.entries(v);
  const inside = (c: string, d: unknown) => {
    const mount = c === 'unified' ? layout.unified : layout.controllers[c]?.mountpoint;
    if (typeof d !== 'string' || mount === undefined || !d.startsWith(`${mount}/`) || d.split('/').includes('..') || !d.includes('nsbox')) return false;
    return leaf === undefined || path.basename(d) === leaf || path.basename(d) === `nsbox-${leaf}`;
  };
  return e.length && e.every(([c, d]) => inside(c, d)) ? (Object.fromEntries(e) as Record<string, string>) : undefined;
}
