import path from 'node:path';
import { readText, writeValue } from '../cgroupfs.js';

/**
 * A new v1 cpuset starts with empty cpus and mems, and a task cannot join it until both are set:
 * copy them from the parent, level by level from the outermost one down to `dir`. Not only the
 * levels this create made: another process may have made a parent a moment ago (after the last
 * cgroup beneath it took the old one with it, rmdirNsboxParents) and not have filled it in yet,
 * and a child copied from an empty parent would stay empty (ENOSPC on cgroup.procs). A level is
 * written only when it is empty and was made here, is `dir`, or is named for nsbox: never a
 * cgroup nsbox did not create.
 */
export async function initCpusetV1(mountpoint: string, dir: string, created: string[]): Promise<void> {
  const rel = path.posix.relative(mountpoint, dir);
  if (rel === '' || rel.startsWith('..')) return;
  let cur = mountpoint;
  for (const part of rel.split('/')) {
    cur = path.posix.join(cur, part);
    const ours = cur === dir || created.includes(cur) || part.includes('nsbox');
    if (!ours) continue;
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if ((await readText(path.join(cur, f))).trim() !== '') continue;
      await writeValue(path.join(cur, f), (await readText(path.join(path.dirname(cur), f))).trim());
    }
  }
}
