/**
 * An image's root file system read through its unpacked layers, as overlayfs would show it, without
 * mounting anything: the topmost layer that has a path wins, a whiteout (a character device 0/0)
 * hides the path below it, an opaque directory hides what lower layers have inside it, a file
 * hides a directory below it. Paths resolve symbolic links inside the root only (an absolute
 * target starts again at the image's root; `..` stops at it), as a container would see them.
 * COPY uses it to find its destination and the directories it copies up, and to read
 * `--from=<stage>` sources.
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { NsboxError, isCode } from '../errors.js';
import { native } from '../native.js';

export interface Found {
  /** The layer directory that has the path (topmost first). */
  layer: string;
  abs: string;
  st: Stats;
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

function opaque(dir: string): boolean {
  for (const prefix of ['trusted', 'user']) {
    try {
      if (native.lgetxattr(dir, `${prefix}.overlay.opaque`)?.toString() === 'y') return true;
    } catch (err) {
      // no xattrs on this file system (ENOTSUP), or not ours to read (EPERM, EACCES): not opaque
      if (!isCode(err, 'ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EACCES')) throw err;
    }
  }
  return false;
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    // nothing there (ENOENT), or a file where a directory would be on the way (ENOTDIR)
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** `a/b/c` (no leading slash, no `.` or `..`), or '' for the root. */
export function cleanRel(p: string): string {
  const n = path.posix.normalize(`/${p}`);
  return n === '/' ? '' : n.slice(1).replace(/\/$/, '');
}

export class LayeredRoot {
  /** Topmost first, as overlay lower dirs are listed. */
  readonly layers: readonly string[];
  constructor(layers: readonly string[]) {
    this.layers = layers;
  }

  /** The path as the merged root has it (symlinks not followed), or undefined. */
  lookup(rel: string): Found | undefined {
    rel = cleanRel(rel);
    const parts = rel === '' ? [] : rel.split('/');
    for (const layer of this.layers) {
      const abs = rel === '' ? layer : path.join(layer, rel);
      const st = lstatOrUndefined(abs);
      if (st) return isWhiteout(st) ? undefined : { layer, abs, st };
      // Not in this layer: may this layer still hide it from the ones below?
      for (let i = parts.length - 1; i >= 1; i--) {
        const anc = path.join(layer, ...parts.slice(0, i));
        const ast = lstatOrUndefined(anc);
        if (!ast) continue;
        if (!ast.isDirectory()) return undefined;
        if (opaque(anc)) return undefined;
        break;
      }
    }
    return undefined;
  }

  /** The names in a directory of the merged root, sorted. */
  readdir(rel: string): string[] {
    rel = cleanRel(rel);
    const seen = new Map<string, boolean>();
    for (const layer of this.layers) {
      const abs = rel === '' ? layer : path.join(layer, rel);
      const st = lstatOrUndefined(abs);
      if (!st) {
        if (this.#hiddenBelow(layer, rel)) break;
        continue;
      }
      if (!st.isDirectory()) break;
      for (const name of readdirSync(abs)) {
        if (seen.has(name)) continue;
        const est = lstatOrUndefined(path.join(abs, name));
        seen.set(name, !!est && !isWhiteout(est));
      }
      if (opaque(abs)) break;
    }
    return [...seen].filter(([, live]) => live).map(([n]) => n).sort();
  }

  #hiddenBelow(layer: string, rel: string): boolean {
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = parts.length - 1; i >= 1; i--) {
      const anc = path.join(layer, ...parts.slice(0, i));
      const ast = lstatOrUndefined(anc);
      if (!ast) continue;
      return !ast.isDirectory() || opaque(anc);
    }
    return false;
  }

  readlink(rel: string): string {
    const f = this.lookup(rel);
    if (!f?.st.isSymbolicLink()) throw new NsboxError(`/${cleanRel(rel)} is not a symbolic link`, { code: 'EINVAL' });
    return readlinkSync(f.abs);
  }

  /**
   * `p` with every symbolic link on the way resolved inside the root (the last one only when
   * `followLast`): the path a process in the container would reach. Relative to the root, no
   * leading slash.
   */
  resolve(p: string, followLast = true): string {
    let todo = cleanRel(p).split('/').filter(Boolean);
    const done: string[] = [];
    let hops = 0;
    while (todo.length) {
      const name = todo.shift()!;
      if (name === '.') continue;
      if (name === '..') {
        done.pop();
        continue;
      }
      const cur = [...done, name].join('/');
      const f = this.lookup(cur);
      if (f?.st.isSymbolicLink() && (todo.length > 0 || followLast)) {
        if (++hops > 40) throw new NsboxError(`/${cleanRel(p)}: too many levels of symbolic links`, { code: 'ELOOP' });
        const target = readlinkSync(f.abs);
        const parts = target.split('/').filter((s) => s !== '' && s !== '.');
        if (target.startsWith('/')) done.length = 0;
        // `..` inside a link target is applied as the walk meets it
        todo = [...parts, ...todo];
        continue;
      }
      done.push(name);
    }
    return done.join('/');
  }
}
