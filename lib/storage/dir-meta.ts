/**
 * Directory owners, modes and times of a layer unpack, applied after every entry: creating entries
 * below a directory changes its times, and a read-only mode would stop them being created.
 */
import { chmodSync, lchownSync, lutimesSync } from 'node:fs';

export interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
}

/** Applies `metas` deepest first, to the directories still in `live`; `fail` makes the error to throw. */
export function applyDirMeta(
  metas: Map<string, DirMeta>,
  live: Set<string>,
  abs: (rel: string) => string,
  chownNeeded: (uid: number, gid: number) => boolean,
  fail: (rel: string, err: unknown) => unknown,
): void {
  const dirs = [...metas].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
  for (const [rel, m] of dirs) {
    if (!live.has(rel)) continue;
    const path = abs(rel);
    try {
      if (chownNeeded(m.uid, m.gid)) lchownSync(path, m.uid, m.gid);
      chmodSync(path, m.mode);
      lutimesSync(path, m.atime, m.mtime);
    } catch (err) {
      throw fail(rel, err);
    }
  }
}
