/**
 * Unpacked layers merged into a plain directory by copying, with overlayfs' rules: layers apply
 * bottom first; a whiteout (a 0/0 character device) deletes the path below it; an opaque directory
 * (xattr <trusted|user>.overlay.opaque=y) hides everything below it. Owners, modes, times and
 * symlinks are kept. Used where an overlay cannot be: a rootfs on a host without overlayfs, and
 * docker's volume copy-up (a new volume starts with the image's files at its mount point).
 * Everything runs through fs/promises (the thread pool): a daemon's event loop keeps serving while
 * a large tree is copied.
 */
import { chmod, chown, copyFile, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native.js';
import { isCode } from './errors.js';

const S_IFMT = 0o170000;

// glibc's dev_t encoding (gnu_dev_major / gnu_dev_minor), on numbers below 2^53.
const major = (dev: number) => ((dev / 256) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
const minor = (dev: number) => (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff);

export interface MergeOptions {
  /** Device nodes, fifos and sockets: copied (a rootfs) or left out (a volume's content). Default copy. */
  nodes?: 'copy' | 'skip';
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

/** Whether a layer directory is opaque; either xattr namespace, whichever the layer was unpacked with. */
function isOpaque(dir: string): boolean {
  for (const ns of ['trusted', 'user']) {
    try {
      if (native.lgetxattr(dir, `${ns}.overlay.opaque`)?.toString() === 'y') return true;
    } catch (err) {
      // an unprivileged caller cannot read trusted.*; a file system without xattrs has none
      if (!isCode(err, 'EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP', 'ENODATA')) throw err;
    }
  }
  return false;
}

async function lstatOrNone(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

async function setMeta(dst: string, st: Stats): Promise<void> {
  await chown(dst, st.uid, st.gid);
  await chmod(dst, st.mode & 0o7777);
  await utimes(dst, st.atime, st.mtime);
}

/** One entry of a layer over what `dst` holds so far. */
async function mergeEntry(src: string, dst: string, st: Stats, opts: MergeOptions): Promise<void> {
  const there = await lstatOrNone(dst);
  if (isWhiteout(st)) {
    if (there) await rm(dst, { recursive: true, force: true });
    return;
  }
  if (st.isDirectory()) {
    const keep = there?.isDirectory() && !isOpaque(src);
    if (there && !keep) await rm(dst, { recursive: true, force: true });
    if (!keep) await mkdir(dst);
    await mergeDir(src, dst, opts);
    // after the entries below: creating them would change the times
    await setMeta(dst, st);
    return;
  }
  const node = !st.isFile() && !st.isSymbolicLink();
  if (node && opts.nodes === 'skip') return;
  if (there) await rm(dst, { recursive: true, force: true });
  if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
    await lchown(dst, st.uid, st.gid);
    await lutimes(dst, st.atime, st.mtime);
    return;
  }
  if (st.isFile()) await copyFile(src, dst);
  else native.mknod(dst, st.mode & (S_IFMT | 0o7777), major(st.rdev), minor(st.rdev));
  await setMeta(dst, st);
}

async function mergeDir(src: string, dst: string, opts: MergeOptions): Promise<void> {
  for (const name of await readdir(src)) {
    const from = join(src, name);
    await mergeEntry(from, join(dst, name), await lstat(from), opts);
  }
}

/** Copies `layers` (topmost first, as overlay lower dirs are listed) into the empty directory `dest`. */
export async function mergeLayers(layers: readonly string[], dest: string, opts: MergeOptions = {}): Promise<void> {
  for (const layer of [...layers].reverse()) await mergeDir(layer, dest, opts);
}

/**
 * Fills `dest` (an empty directory) with what the merged layers hold at `target` (an absolute path
 * in the image), `dest` itself taking that directory's owner and mode. Returns whether the image
 * has a directory there.
 */
export async function mergeLayersAt(layers: readonly string[], target: string, dest: string, opts: MergeOptions = {}): Promise<boolean> {
  const parts = target.split('/').filter(Boolean);
  if (parts.length === 0) return false;
  let present = false;
  let top: Stats | undefined;
  for (const layer of [...layers].reverse()) {
    // An ancestor replaced, deleted or made opaque in this layer hides what the lower ones had.
    let hidden = false;
    for (let i = 1; i <= parts.length && !hidden; i++) {
      const p = join(layer, ...parts.slice(0, i));
      const st = await lstatOrNone(p);
      if (!st) break;
      if (isWhiteout(st) || !st.isDirectory() || isOpaque(p)) hidden = true;
    }
    const at = join(layer, ...parts);
    const here = await lstatOrNone(at);
    if (hidden) {
      for (const name of await readdir(dest)) await rm(join(dest, name), { recursive: true, force: true });
      present = false;
      top = undefined;
    }
    if (here?.isDirectory()) {
      await mergeDir(at, dest, opts);
      top = here;
      present = true;
    }
  }
  if (top) {
    await lchown(dest, top.uid, top.gid);
    await chmod(dest, top.mode & 0o7777);
  }
  return present;
}
