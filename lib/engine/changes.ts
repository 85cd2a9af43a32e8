/**
 * docker diff: what a container changed, read from its overlay upper directory against the image's
 * layers. A whiteout (a 0/0 character device) is a deletion (D); an entry the layers below have is
 * a change (C: a copied-up file, or a directory something inside changed); any other an addition
 * (A), and so is everything inside an added directory. Sorted by path, as docker lists them.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native.js';

export type ChangeKind = 'C' | 'A' | 'D';
export interface Change {
  path: string;
  kind: ChangeKind;
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    // absent from this layer: the next one down may have it
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function isOpaque(dir: string): boolean {
  for (const prefix of ['trusted', 'user']) {
    try {
      if (native.lgetxattr(dir, `${prefix}.overlay.opaque`)?.toString() === 'y') return true;
    } catch (err) {
      // no such attribute (ENODATA), or this namespace unreadable here: not opaque by it
      if (!['ENODATA', 'EOPNOTSUPP', 'ENOTSUP', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  return false;
}

/** Whether the image's layers (topmost first) have `rel`, whiteouts and opaque directories applied. */
function inLowers(lowers: readonly string[], rel: string): boolean {
  const parts = rel.split('/').filter(Boolean);
  for (const lower of lowers) {
    // a whiteout or a non-directory at a parent in this layer hides everything below it
    let hidden = false;
    for (let i = 1; i < parts.length; i++) {
      const st = lstatOrUndefined(join(lower, ...parts.slice(0, i)));
      if (st && (isWhiteout(st) || !st.isDirectory())) {
        hidden = true;
        break;
      }
    }
    if (hidden) return false;
    const st = lstatOrUndefined(join(lower, ...parts));
    if (st) return !isWhiteout(st);
    for (let i = 1; i < parts.length; i++) if (isOpaque(join(lower, ...parts.slice(0, i)))) return false;
  }
  return false;
}

/** The changes of `upper` over `lowers` (the image's layer directories, topmost first). */
export function containerChanges(upper: string, lowers: readonly string[]): Change[] {
  const out: Change[] = [];
  const walk = (dir: string, rel: string, added: boolean) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      // a container never started has no upper directory: no changes
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      const path = `${rel}/${name}`;
      const full = join(dir, name);
      const st = lstatSync(full);
      if (isWhiteout(st)) {
        out.push({ path, kind: 'D' });
        continue;
      }
      const isNew = added || !inLowers(lowers, path);
      out.push({ path, kind: isNew ? 'A' : 'C' });
      if (st.isDirectory()) walk(full, path, isNew);
    }
  };
  walk(upper, '', false);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
