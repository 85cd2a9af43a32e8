/**
 * The copy fallback for hosts (or file systems) where overlayfs is not available: the layers are
 * copied into one directory, bottom layer first, applying overlayfs whiteouts (a 0/0 character
 * device deletes the path below it) and opaque directories (xattr trusted.overlay.opaque=y hides
 * everything below). Slower than an overlay and without sharing, but the container sees the same tree.
 */
import { chmod, chown, copyFile, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { native } from '../native.js';

const S_IFMT = 0o170000;

// glibc's dev_t encoding (gnu_dev_major / gnu_dev_minor), on numbers below 2^53.
const major = (dev: number) => ((dev / 256) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
const minor = (dev: number) => (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff);

function isWhiteout(st: { mode: number; rdev: number; isCharacterDevice(): boolean }): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function isOpaque(dir: string): boolean {
  for (const ns of ['trusted', 'user']) {
    try {
      if (native.lgetxattr(dir, `${ns}.overlay.opaque`)?.toString() === 'y') return true;
    } catch {
      // no such attribute namespace here
    }
  }
  return false;
}

async function copyEntry(src: string, dst: string): Promise<void> {
  const st = await lstat(src);
  if (isWhiteout(st)) {
    await rm(dst, { recursive: true, force: true });
    return;
  }
  if (st.isDirectory()) {
    const existing = await lstat(dst).catch(() => undefined);
    if (existing && (!existing.isDirectory() || isOpaque(src))) await rm(dst, { recursive: true, force: true });
    if (!existing || !existing.isDirectory() || isOpaque(src)) await mkdir(dst);
    for (const name of await readdir(src)) await copyEntry(join(src, name), join(dst, name));
    await chown(dst, st.uid, st.gid);
    await chmod(dst, st.mode & 0o7777);
    await utimes(dst, st.atime, st.mtime);
    return;
  }
  await rm(dst, { recursive: true, force: true });
  if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
    await lchown(dst, st.uid, st.gid);
    await lutimes(dst, st.atime, st.mtime);
    return;
  }
  if (st.isFile()) await copyFile(src, dst);
  else native.mknod(dst, st.mode & (S_IFMT | 0o7777), major(st.rdev), minor(st.rdev));
  await chown(dst, st.uid, st.gid);
  await chmod(dst, st.mode & 0o7777);
  await utimes(dst, st.atime, st.mtime);
}

/** Copies `layers` (topmost first, as overlay lower dirs are listed) into the empty directory `dest`. */
export async function copyLayers(layers: string[], dest: string): Promise<void> {
  for (const layer of [...layers].reverse()) {
    for (const name of await readdir(layer)) await copyEntry(join(layer, name), join(dest, name));
  }
}

let overlayKnown: boolean | undefined;
/** Whether the kernel has overlayfs (it may still refuse a particular upper file system). */
export async function overlayAvailable(): Promise<boolean> {
  if (overlayKnown === undefined) {
    const { readFile } = await import('node:fs/promises');
    overlayKnown = (await readFile('/proc/filesystems', 'utf8').catch(() => '')).includes('\toverlay\n');
  }
  return overlayKnown;
}
