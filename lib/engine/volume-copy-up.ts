/**
 * docker's volume copy-up: a new, empty volume mounted over a path the image has files at starts
 * with those files (owners, modes and links kept), as a container would have seen them. The
 * image's view of the path is merged here from its unpacked layers, bottom to top, with overlayfs'
 * rules: a whiteout (a 0/0 character device) deletes, an opaque directory hides what is below.
 */
import { chmodSync, copyFileSync, lchownSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native.js';
import { overlayXattrPrefix } from '../privilege.js';

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

function isOpaque(dir: string): boolean {
  try {
    return native.lgetxattr(dir, `${overlayXattrPrefix()}.overlay.opaque`)?.toString() === 'y';
  } catch {
    return false;
  }
}

function lstat(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

function clear(dir: string): void {
  for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
}

/** One entry from a layer into the volume: files, links and directories (device nodes and sockets are left out). */
function copyEntry(src: string, dst: string, st: Stats): void {
  if (st.isDirectory()) {
    mkdirSync(dst, { recursive: true });
    mergeDir(src, dst);
  } else if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(src), dst);
  } else if (st.isFile()) {
    copyFileSync(src, dst);
  } else {
    return;
  }
  lchownSync(dst, st.uid, st.gid);
  if (!st.isSymbolicLink()) {
    chmodSync(dst, st.mode & 0o7777);
    utimesSync(dst, st.atime, st.mtime);
  }
}

/** A layer's directory over what the volume holds so far. */
function mergeDir(src: string, dst: string): void {
  for (const name of readdirSync(src)) {
    const from = join(src, name);
    const to = join(dst, name);
    const st = lstatSync(from);
    const there = lstat(to);
    if (isWhiteout(st)) {
      if (there) rmSync(to, { recursive: true, force: true });
      continue;
    }
    if (there && !(st.isDirectory() && there.isDirectory() && !isOpaque(from))) rmSync(to, { recursive: true, force: true });
    copyEntry(from, to, st);
  }
}

/**
 * Fills `dest` (an empty directory) with what the image has at `target`. `layers` are the unpacked
 * layer directories, topmost first (as overlay lower dirs). Returns whether the image had a
 * directory there.
 */
export function copyUp(layers: string[], target: string, dest: string): boolean {
  const parts = target.split('/').filter(Boolean);
  if (parts.length === 0) return false;
  let present = false;
  for (const layer of [...layers].reverse()) {
    // An ancestor replaced, deleted or made opaque in this layer hides what the lower ones had.
    let hidden = false;
    for (let i = 1; i <= parts.length && !hidden; i++) {
      const p = join(layer, ...parts.slice(0, i));
      const st = lstat(p);
      if (!st) break;
      if (isWhiteout(st) || !st.isDirectory() || isOpaque(p)) hidden = true;
    }
    const here = lstat(join(layer, ...parts));
    if (hidden) {
      clear(dest);
      present = false;
    }
    if (here?.isDirectory()) {
      mergeDir(join(layer, ...parts), dest);
      const root = lstatSync(join(layer, ...parts));
      lchownSync(dest, root.uid, root.gid);
      chmodSync(dest, root.mode & 0o7777);
      present = true;
    }
  }
  return present;
}
