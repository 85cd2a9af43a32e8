/**
 * COPY and ADD into a step's upper directory (its diff), without a container: the destination is
 * found in the image as a container would see it (LayeredRoot, symlinks resolved inside the root),
 * the directories on the way are copied up with their metadata (as overlayfs copies them up), the
 * sources written below. docker's rules: a directory's contents are copied, not the directory; a
 * destination ending in `/` (or an existing directory) receives the sources by name; several
 * sources need a directory; new files are owned by 0:0 (a stage's keep theirs) unless `--chown`;
 * `--chmod` sets their mode; times are kept. ADD unpacks a local tar archive (plain, gzip or zstd)
 * with the layer unpack, which refuses any entry that would leave the destination.
 */
import { chmodSync, closeSync, copyFileSync, lchownSync, lutimesSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync, lstatSync, type Stats } from 'node:fs';
import path from 'node:path';
import { NsboxError, ValidationError, isCode } from '../errors.js';
import { sniffCompression } from '../storage/index.js';
import { isTarHeader } from '../storage/tar-reader.js';
import { unpackLayer } from '../storage/unpack.js';
import { cleanRel, LayeredRoot } from './layered-root.js';
import type { SourceTree } from './source-tree.js';

export interface CopyRequest {
  tree: SourceTree;
  /** Matched source paths in the tree (matchSources), in order. */
  items: string[];
  /** Inline sources (`COPY <<EOF /dst`): name and content. */
  inline?: Array<{ name: string; content: string }>;
  /** Whether a source was a wildcard (then the destination must be a directory, as with several). */
  wildcard: boolean;
  /** The destination as written (expanded), relative to `workdir` unless absolute. */
  dest: string;
  workdir: string;
  chown?: { uid: number; gid: number };
  chmod?: number;
  /** ADD: unpack local tar archives. */
  unpackArchives: boolean;
  /**
   * COPY --parents: per item, the leading path dropped from it; the rest of its path is kept below
   * the destination (a directory), the directories on the way copied from the source.
   */
  parents?: string[];
}

const copyError = (msg: string) => new NsboxError(msg, { code: 'ERR_BUILD' });

/** Writes the request's files into `upper`, the step's diff over `lower` (the parent's layers). */
export async function copyInto(upper: string, lower: LayeredRoot, req: CopyRequest): Promise<void> {
  const view = new LayeredRoot([upper, ...lower.layers]);
  const destAbs = path.posix.resolve(req.workdir || '/', req.dest);
  const count = req.items.length + (req.inline?.length ?? 0);
  const existing = view.lookup(view.resolve(destAbs));
  const destIsDir = req.parents !== undefined || req.dest.endsWith('/') || req.dest.endsWith('/.') || existing?.st.isDirectory() === true;
  if ((count > 1 || req.wildcard) && !destIsDir) {
    throw new ValidationError(`When using COPY with more than one source file, the destination must be a directory and end with a / (${req.dest})`, 'dockerfile');
  }
  const owner = (st: Stats) => req.chown ?? (req.tree.keepsOwners ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 });
  const newDirOwner = req.chown ?? { uid: 0, gid: 0 };
  const w = new Writer(upper, view, newDirOwner);

  for (const [i, item] of req.items.entries()) {
    const st = req.tree.lstat(item)!;
    if (req.parents) {
      const base = w.dir(destAbs);
      const drop = req.parents[i]!;
      const kept = drop && item.startsWith(`${drop}/`) ? item.slice(drop.length + 1) : item;
      let src = drop;
      let dst = base;
      for (const part of path.posix.dirname(kept).split('/').filter((p) => p !== '' && p !== '.')) {
        src = src ? `${src}/${part}` : part;
        dst = dst ? `${dst}/${part}` : part;
        copyDirEntry(req, src, req.tree.lstat(src)!, dst, w, owner);
      }
      copyEntry(req, item, st, cleanRel(`${base}/${kept}`), w, owner);
      continue;
    }
    if (st.isDirectory()) {
      const dir = w.dir(destAbs);
      copyDirContents(req, item, dir, w, owner);
      continue;
    }
    if (req.unpackArchives && st.isFile() && isArchive(req.tree.file(item))) {
      const dir = w.dir(destAbs);
      await unpackArchive(req.tree.file(item), path.join(upper, dir), item);
      // its entries were not written through the Writer
      w.unknown(dir);
      continue;
    }
    const target = destIsDir ? `${w.dir(destAbs)}/${path.posix.basename(item)}` : w.file(destAbs);
    copyEntry(req, item, st, cleanRel(target), w, owner);
  }
  for (const doc of req.inline ?? []) {
    const target = cleanRel(destIsDir ? `${w.dir(destAbs)}/${doc.name}` : w.file(destAbs));
    const abs = w.prepare(target);
    writeFileSync(abs, doc.content, { mode: 0o644 });
    const o = req.chown ?? { uid: 0, gid: 0 };
    lchownSync(abs, o.uid, o.gid);
    chmodSync(abs, req.chmod ?? 0o644);
  }
}

/** WORKDIR's directory (and those above it) made in `upper` as copy-up or new directories owned by `owner`. */
export function makeDir(upper: string, lower: LayeredRoot, dir: string, owner = { uid: 0, gid: 0 }): void {
  new Writer(upper, new LayeredRoot([upper, ...lower.layers]), owner).dir(dir);
}

class Writer {
  /** Directories this copy made (empty then): what is in them, it wrote. */
  readonly #newDirs = new Set<string>();
  /** Entries written in those directories: any other name there needs no look before it is made. */
  readonly #written = new Set<string>();
  constructor(
    readonly upper: string,
    readonly view: LayeredRoot,
    readonly newOwner: { uid: number; gid: number },
  ) {}

  /** Makes the directory `abs` (image path) in the upper dir, copying up or creating each element; its resolved path. */
  dir(abs: string): string {
    const resolved = this.view.resolve(abs);
    let cur = '';
    for (const part of resolved.split('/').filter(Boolean)) {
      cur = cur ? `${cur}/${part}` : part;
      this.#ensureDir(cur);
    }
    return cur;
  }

  /** The resolved path for a file at `abs` (the last element not followed): its parent made. */
  file(abs: string): string {
    const rel = cleanRel(abs);
    if (rel === '') throw new ValidationError('cannot copy a file to /', 'dockerfile');
    const parent = this.dir(path.posix.dirname(`/${rel}`));
    return parent ? `${parent}/${path.posix.basename(rel)}` : path.posix.basename(rel);
  }

  #ensureDir(rel: string): void {
    const inUpper = path.join(this.upper, rel);
    const up = lstatOrUndefined(inUpper);
    if (up?.isDirectory()) return;
    const found = this.view.lookup(rel);
    if (found && !found.st.isDirectory()) throw copyError(`cannot copy to /${rel}: it is not a directory in the image`);
    if (up) rmSync(inUpper, { recursive: true, force: true });
    mkdirSync(inUpper);
    this.#newDirs.add(rel);
    if (found) {
      // copy-up: the directory as the image has it
      lchownSync(inUpper, found.st.uid, found.st.gid);
      chmodSync(inUpper, found.st.mode & 0o7777);
      utimesSync(inUpper, found.st.atime, found.st.mtime);
    } else {
      lchownSync(inUpper, this.newOwner.uid, this.newOwner.gid);
      chmodSync(inUpper, 0o755);
    }
  }

  /** The upper-dir path for the entry `rel`, whatever was there before in the upper dir removed unless both are directories. */
  prepare(rel: string, isDir = false): string {
    const abs = path.join(this.upper, rel);
    const fresh = this.fresh(rel);
    if (this.#newDirs.has(path.posix.dirname(rel))) this.#written.add(rel);
    if (fresh) return abs;
    const st = lstatOrUndefined(abs);
    if (st && !(isDir && st.isDirectory())) rmSync(abs, { recursive: true, force: true });
    return abs;
  }

  /** Whether nothing is at `rel` yet: a name not written before in a directory this copy made. */
  fresh(rel: string): boolean {
    return this.#newDirs.has(path.posix.dirname(rel)) && !this.#written.has(rel);
  }

  /** What is in `rel` is not known to the writer any more. */
  unknown(rel: string): void {
    this.#newDirs.delete(rel);
  }

  /** `rel` was just made, empty, by mkdir. */
  madeDir(rel: string): void {
    this.#newDirs.add(rel);
  }
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

function copyDirContents(req: CopyRequest, srcDir: string, destRel: string, w: Writer, owner: (st: Stats) => { uid: number; gid: number }): void {
  for (const name of req.tree.readdir(srcDir)) {
    const src = srcDir ? `${srcDir}/${name}` : name;
    const st = req.tree.lstat(src);
    if (st) copyEntry(req, src, st, destRel ? `${destRel}/${name}` : name, w, owner);
  }
}

/** The directory `src` as `destRel` (made, or kept when there), with its owner, mode and times; not its contents. */
function copyDirEntry(req: CopyRequest, src: string, st: Stats, destRel: string, w: Writer, owner: (st: Stats) => { uid: number; gid: number }): string {
  const o = owner(st);
  const fresh = w.fresh(destRel);
  const abs = w.prepare(destRel, true);
  if (fresh || !lstatOrUndefined(abs)) {
    mkdirSync(abs);
    w.madeDir(destRel);
  }
  lchownSync(abs, o.uid, o.gid);
  chmodSync(abs, req.chmod ?? st.mode & 0o7777);
  utimesSync(abs, st.atime, st.mtime);
  return abs;
}

function copyEntry(req: CopyRequest, src: string, st: Stats, destRel: string, w: Writer, owner: (st: Stats) => { uid: number; gid: number }): void {
  const o = owner(st);
  if (st.isDirectory()) {
    const abs = copyDirEntry(req, src, st, destRel, w, owner);
    copyDirContents(req, src, destRel, w, owner);
    // the contents changed the directory's times: set them again
    utimesSync(abs, st.atime, st.mtime);
    return;
  }
  const abs = w.prepare(destRel);
  if (st.isSymbolicLink()) {
    symlinkSync(req.tree.readlink(src), abs);
    lchownSync(abs, o.uid, o.gid);
    lutimesSync(abs, st.atime, st.mtime);
    return;
  }
  if (!st.isFile()) throw copyError(`${req.tree.what}: /${src} is not a regular file, a directory or a symbolic link`);
  // copyFile gives the copy the source's mode; the chown then clears set-id bits, which chmod puts back
  copyFileSync(req.tree.file(src), abs);
  lchownSync(abs, o.uid, o.gid);
  if (req.chmod !== undefined || st.mode & 0o6000) chmodSync(abs, req.chmod ?? st.mode & 0o7777);
  utimesSync(abs, st.atime, st.mtime);
}

function isArchive(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, 512, 0);
    const c = sniffCompression(head.subarray(0, n));
    if (c === 'gzip' || c === 'zstd') return true;
    return n === 512 && isTarHeader(head);
  } finally {
    closeSync(fd);
  }
}

/** Unpacks a tar into `destDir` (in the upper dir) through a temp dir, merging with what is there. */
async function unpackArchive(file: string, destDir: string, name: string): Promise<void> {
  const tmp = mkdtempSync(path.join(path.dirname(destDir), '.nsbox-add-'));
  try {
    await unpackLayer(file, tmp, { name: `ADD ${name}` });
    merge(tmp, destDir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function merge(from: string, to: string): void {
  for (const n of readdirSync(from)) {
    const src = path.join(from, n);
    const dst = path.join(to, n);
    const s = lstatSync(src);
    const d = lstatOrUndefined(dst);
    if (s.isDirectory() && d?.isDirectory()) {
      merge(src, dst);
      continue;
    }
    if (d) rmSync(dst, { recursive: true, force: true });
    renameSync(src, dst);
  }
}
