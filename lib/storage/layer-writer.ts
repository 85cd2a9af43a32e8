/**
 * The path-safe half of a layer unpack: applies one layer's tar entries under a root directory, with
 * OCI whiteouts turned into overlayfs ones, and nothing created or changed outside that directory.
 *
 * How that is guaranteed: every entry name is checked (no absolute path, no `..`, no over-long
 * component); every parent directory is walked with lstat from the layer root and must be a real
 * directory that this unpack made or saw (a symlink in a parent position is refused, never
 * followed); an existing path that an entry replaces is removed first, and files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, so nothing is ever written through a link; hard link targets obey the
 * same rules and must already exist inside the layer. Path checks and directories run one entry at a
 * time, in archive order; small files are created and filled in batches on the thread pool
 * (file-batch.ts, under the root's fd, only below directories made here), bigger files' contents are
 * written concurrently through fds opened here (file-sink.ts). The batches are waited for before any
 * entry that could meet their paths (a replaced path, a hard link, a whiteout) and before the
 * directories' modes and times.
 */
import { closeSync, constants as fsc, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, chmodSync } from 'node:fs';
import { lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { NsboxError } from '../errors.js';
import { native } from '../native.js';
import { overlayXattrPrefix } from '../privilege.js';
import { applyDirMeta, type DirMeta } from './dir-meta.js';
import { cleanEntryName } from './entry-name.js';
import { LayerError, isCode } from './errors.js';
import { BATCH_MAX_FILE, FileBatcher } from './file-batch.js';
import { ContentWriter, FileSink, type FileOwner } from './file-sink.js';
import type { TarEntry, TarSink } from './tar-reader.js';

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const OPAQUE = '.wh..wh..opq';
const WH = '.wh.';

/** Applies one layer's entries under `root`, entry by entry: `entry` is the TarReader's handler. */
export class LayerWriter implements FileOwner {
  readonly #root: string;
  readonly #where: string;
  readonly #owners: boolean;
  readonly #warn: (m: string) => void;
  /** Relative paths ('' = root) known to be real directories: made or lstat'ed by us. */
  readonly #dirs = new Set<string>(['']);
  readonly #dirMeta = new Map<string, DirMeta>();
  readonly #content: ContentWriter;
  /**
   * Paths this unpack created, when the root was empty at the start: nothing else can be there, so
   * an entry whose path is not in it needs no lstat to find what it replaces (one syscall a file).
   * Undefined when the root held something.
   */
  readonly #made: Set<string> | undefined;
  /** The owner a new file gets anyway (this process's, no setgid directory): no chown needed for it. */
  readonly #ownUid: number;
  readonly #ownGid: number;
  /** Small files go to the addon in batches; only when the root was empty (see #made). */
  readonly #batch: FileBatcher | undefined;
  #rootFd: number;
  #failure: unknown;
  contentSize = 0;

  constructor(root: string, where: string, owners: boolean, maxPending: number, warn: (m: string) => void) {
    this.#root = root;
    this.#where = where;
    this.#owners = owners;
    this.#content = new ContentWriter(maxPending);
    this.#warn = warn;
    const fresh = readdirSync(root).length === 0;
    this.#made = fresh ? new Set(['']) : undefined;
    // the directories this unpack makes get their modes (setgid among them) only at the end
    const inherits = fresh && (lstatSync(root).mode & 0o2000) === 0;
    this.#ownUid = inherits ? (process.geteuid?.() ?? -1) : -1;
    this.#ownGid = inherits ? (process.getegid?.() ?? -1) : -1;
    this.#rootFd = fresh ? openSync(root, fsc.O_RDONLY | fsc.O_DIRECTORY) : -1;
    this.#batch = fresh ? new FileBatcher(this.#rootFd, (rel, err) => this.#fail(rel, 'create', err)) : undefined;
  }

  #chownNeeded(uid: number, gid: number): boolean {
    return this.#owners && (uid !== this.#ownUid || gid !== this.#ownGid);
  }

  #refuse(entry: string, why: string): LayerError {
    return new LayerError(`${this.#where}: entry "${entry}" ${why}`, { entry, code: 'ERR_LAYER_UNSAFE' });
  }

  #fail(entry: string, what: string, err: unknown): NsboxError {
    if (err instanceof NsboxError) return err;
    const e = err as NodeJS.ErrnoException;
    return new LayerError(`${this.#where}: entry "${entry}": ${what}: ${e.code ?? e.message}`, {
      entry,
      code: e.code ?? 'ERR_LAYER',
      ...(e.errno === undefined ? {} : { errno: Math.abs(e.errno) }),
      cause: err,
    });
  }

  /** The entry name as a clean relative path, or a refusal. */
  #clean(name: string, entry: string, what = 'entry'): string {
    return cleanEntryName(name, what, (why) => this.#refuse(entry, why));
  }

  #abs(rel: string): string {
    return rel === '' ? this.#root : `${this.#root}/${rel}`;
  }

  #lstat(rel: string): Stats | undefined {
    return lstatSync(this.#abs(rel), { throwIfNoEntry: false });
  }

  /**
   * Makes sure every directory above `rel` is a real directory inside the layer, creating missing
   * ones (as tar does) when `create`; a symlink or a non-directory on the way is refused.
   */
  #parents(rel: string, entry: string, create: boolean): void {
    const slash = rel.lastIndexOf('/');
    if (slash === -1) return;
    const parent = rel.slice(0, slash);
    if (this.#dirs.has(parent)) return;
    let at = 0;
    while (at !== -1) {
      const next = rel.indexOf('/', at);
      if (next === -1) break;
      const dir = rel.slice(0, next);
      at = next + 1;
      if (this.#dirs.has(dir)) continue;
      const st = this.#lstat(dir);
      if (!st) {
        if (!create) throw this.#refuse(entry, `refers to "${dir}", which does not exist in the layer`);
        try {
          mkdirSync(this.#abs(dir), 0o755);
          this.#made?.add(dir);
        } catch (err) {
          throw this.#fail(entry, `mkdir ${dir}`, err);
        }
      } else if (st.isSymbolicLink()) {
        throw this.#refuse(entry, `goes through the symlink "${dir}": refused, a layer may not write through links`);
      } else if (!st.isDirectory()) {
        throw this.#refuse(entry, `needs "${dir}" to be a directory, but it is not`);
      }
      this.#dirs.add(dir);
    }
  }

  /** Removes whatever is at `rel` (an entry replaces it), forgetting directories under it. */
  #clear(rel: string, entry: string, keepDir: boolean): Stats | undefined {
    if (this.#made && !this.#made.has(rel)) return undefined;
    const st = this.#lstat(rel);
    if (!st) return undefined;
    if (st.isDirectory()) {
      if (keepDir) return st;
      if (rel === '') throw this.#refuse(entry, 'would replace the layer root');
      try {
        rmSync(this.#abs(rel), { recursive: true, force: true });
      } catch (err) {
        throw this.#fail(entry, `remove ${rel}`, err);
      }
      const prefix = `${rel}/`;
      for (const d of this.#dirs) if (d === rel || d.startsWith(prefix)) this.#dirs.delete(d);
      for (const d of this.#dirMeta.keys()) if (d === rel || d.startsWith(prefix)) this.#dirMeta.delete(d);
      return undefined;
    }
    try {
      unlinkSync(this.#abs(rel));
    } catch (err) {
      throw this.#fail(entry, `remove ${rel}`, err);
    }
    return undefined;
  }

  checkFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Handles one tar entry; returns a sink for a regular file's body. */
  entry = (e: TarEntry): TarSink | undefined | Promise<TarSink | undefined> => {
    this.checkFailed();
    const rel = this.#clean(e.path, e.path);
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    // what the batched files may meet: a path made before (replaced), a link target, a whiteout
    if (this.#batch && !this.#batch.idle && (this.#made?.has(rel) || e.type === 'link' || base.startsWith(WH))) {
      return this.#batch.flush().then(() => this.#apply(e, rel, base));
    }
    return this.#apply(e, rel, base);
  };

  #apply(e: TarEntry, rel: string, base: string): TarSink | undefined | Promise<TarSink | undefined> {
    if (base.startsWith(WH)) return this.#whiteout(e, rel, base);
    for (const key of e.xattrs.keys()) {
      if (/^(trusted|user)\.overlay\./.test(key)) throw this.#refuse(e.path, `sets the overlayfs attribute "${key}" (reserved for whiteouts)`);
    }
    switch (e.type) {
      case 'dir':
        return this.#dir(e, rel);
      case 'file':
        return this.#file(e, rel);
      case 'link':
        return this.#hardlink(e, rel);
      case 'symlink':
        return this.#symlink(e, rel);
      case 'char':
      case 'block':
      case 'fifo':
        return this.#node(e, rel);
    }
  }

  #whiteout(e: TarEntry, rel: string, base: string): undefined {
    const slash = rel.lastIndexOf('/');
    const dir = slash === -1 ? '' : rel.slice(0, slash);
    if (base === OPAQUE) {
      // the directory holding the marker hides everything below it in lower layers
      if (dir !== '') this.#parents(`${dir}/x`, e.path, true);
      try {
        native.lsetxattr(this.#abs(dir), `${overlayXattrPrefix()}.overlay.opaque`, Buffer.from('y'));
      } catch (err) {
        throw this.#fail(e.path, `mark opaque (${overlayXattrPrefix()}.overlay.opaque)`, err);
      }
      return undefined;
    }
    if (base.startsWith(`${WH}${WH}`)) {
      this.#warn(`${this.#where}: skipped the aufs metadata entry "${e.path}"`);
      return undefined;
    }
    const name = base.slice(WH.length);
    if (name === '' || name === '.' || name === '..') throw this.#refuse(e.path, 'is a whiteout without a name');
    const target = dir === '' ? name : `${dir}/${name}`;
    this.#parents(target, e.path, true);
    this.#clear(target, e.path, false);
    try {
      native.mknod(this.#abs(target), S_IFCHR, 0, 0);
      this.#made?.add(target);
    } catch (err) {
      throw this.#fail(e.path, `whiteout ${target} (mknod 0/0, needs root)`, err);
    }
    return undefined;
  }

  #dir(e: TarEntry, rel: string): undefined {
    this.#parents(rel, e.path, true);
    const st = this.#clear(rel, e.path, true);
    if (!st) {
      try {
        mkdirSync(this.#abs(rel), 0o700);
        this.#made?.add(rel);
      } catch (err) {
        throw this.#fail(e.path, 'mkdir', err);
      }
    }
    this.#dirs.add(rel);
    this.#xattrs(e, rel);
    // applied at the end, deepest first: entries below may still be created, times would change
    this.#dirMeta.set(rel, { mode: e.mode, uid: e.uid, gid: e.gid, atime: e.atime ?? e.mtime, mtime: e.mtime });
    return undefined;
  }

  #file(e: TarEntry, rel: string): TarSink | Promise<TarSink> {
    if (rel === '') throw this.#refuse(e.path, 'would replace the layer root');
    this.#parents(rel, e.path, true);
    this.#clear(rel, e.path, false);
    if (this.#batch && e.xattrs.size === 0 && e.size <= BATCH_MAX_FILE) {
      this.#made?.add(rel);
      this.contentSize += e.size;
      const chown = this.#chownNeeded(e.uid, e.gid);
      return this.#batch.sink(rel, e, chown ? e.uid : -1, chown ? e.gid : -1);
    }
    let fd: number;
    try {
      fd = openSync(this.#abs(rel), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
      this.#made?.add(rel);
    } catch (err) {
      throw this.#fail(e.path, 'create', err);
    }
    this.contentSize += e.size;
    const sink = new FileSink(this, this.#content, fd, e, rel, () => this.settle());
    if (this.#content.pendingFiles >= 256) return this.#content.drain(0).then(() => sink);
    return sink;
  }

  /** Called by a FileSink once its content is written: owner, xattrs, mode, times, close. */
  finish(fd: number, e: TarEntry, rel: string): void {
    try {
      if (this.#chownNeeded(e.uid, e.gid)) fchownSync(fd, e.uid, e.gid);
      if (e.xattrs.size) this.#xattrs(e, rel);
      fchmodSync(fd, e.mode);
      futimesSync(fd, e.atime ?? e.mtime, e.mtime);
    } finally {
      closeSync(fd);
    }
  }

  failed(err: unknown, entry: string): void {
    if (this.#failure === undefined) this.#failure = this.#fail(entry, 'write', err);
  }

  /** A file with xattrs is finished before the next entry (xattrs are set by path). */
  async settle(): Promise<void> {
    await this.#content.drain(0);
    this.checkFailed();
  }

  #hardlink(e: TarEntry, rel: string): undefined {
    if (rel === '') throw this.#refuse(e.path, 'would replace the layer root');
    const target = this.#clean(e.linkpath, e.path, 'hard link target');
    if (target === '') throw this.#refuse(e.path, 'is a hard link to the layer root');
    this.#parents(target, e.path, false);
    const st = this.#lstat(target);
    if (!st) throw this.#refuse(e.path, `is a hard link to "${e.linkpath}", which is not in the layer (yet)`);
    if (st.isDirectory()) throw this.#refuse(e.path, `is a hard link to the directory "${e.linkpath}"`);
    if (target === rel) return undefined;
    this.#parents(rel, e.path, true);
    this.#clear(rel, e.path, false);
    try {
      // link(2) does not follow a symlink target: a link to a symlink is a second symlink
      linkSync(this.#abs(target), this.#abs(rel));
      this.#made?.add(rel);
    } catch (err) {
      throw this.#fail(e.path, `hard link to ${target}`, err);
    }
    return undefined;
  }

  #symlink(e: TarEntry, rel: string): undefined {
    if (rel === '') throw this.#refuse(e.path, 'would replace the layer root');
    if (e.linkpath === '' || e.linkpath.includes('\0')) throw this.#refuse(e.path, 'is a symlink with an empty or invalid target');
    this.#parents(rel, e.path, true);
    this.#clear(rel, e.path, false);
    const abs = this.#abs(rel);
    try {
      // the target is stored as written (absolute and ".." targets are legal): it is never followed here
      symlinkSync(e.linkpath, abs);
      this.#made?.add(rel);
      if (this.#chownNeeded(e.uid, e.gid)) lchownSync(abs, e.uid, e.gid);
      this.#xattrs(e, rel);
      lutimesSync(abs, e.atime ?? e.mtime, e.mtime);
    } catch (err) {
      throw this.#fail(e.path, 'symlink', err);
    }
    return undefined;
  }

  #node(e: TarEntry, rel: string): undefined {
    if (rel === '') throw this.#refuse(e.path, 'would replace the layer root');
    this.#parents(rel, e.path, true);
    this.#clear(rel, e.path, false);
    const abs = this.#abs(rel);
    const type = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO;
    try {
      native.mknod(abs, type | 0o600, e.devmajor, e.devminor);
      this.#made?.add(rel);
      // just made by mknod in a checked directory: chmod by path cannot meet a symlink here
      if (this.#chownNeeded(e.uid, e.gid)) lchownSync(abs, e.uid, e.gid);
      this.#xattrs(e, rel);
      chmodSync(abs, e.mode);
      lutimesSync(abs, e.atime ?? e.mtime, e.mtime);
    } catch (err) {
      throw this.#fail(e.path, `mknod (${e.type})`, err);
    }
    return undefined;
  }

  #xattrs(e: TarEntry, rel: string): void {
    for (const [key, value] of e.xattrs) {
      try {
        native.lsetxattr(this.#abs(rel), key, value);
      } catch (err) {
        // as docker does: a file system (or an unprivileged caller) may not take every namespace
        if (isCode(err, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP')) this.#warn(`${this.#where}: entry "${e.path}": xattr ${key} not set (${(err as NsboxError).code})`);
        else throw this.#fail(e.path, `set xattr ${key}`, err);
      }
    }
  }

  /** After the last entry: wait for the writes, then directory owners, modes and times, deepest first. */
  async complete(): Promise<void> {
    await this.#batch?.flush();
    this.#closeRoot();
    await this.#content.drain(0);
    this.checkFailed();
    const abs = (rel: string): string => this.#abs(rel);
    applyDirMeta(this.#dirMeta, this.#dirs, abs, (u, g) => this.#chownNeeded(u, g), (rel, err) => this.#fail(rel || '.', 'set directory metadata', err));
  }

  /** On failure: wait for writes in flight so no fd outlives the unpack. */
  async abandon(): Promise<void> {
    await this.#batch?.abandon();
    this.#closeRoot();
    await this.#content.abandon();
  }

  #closeRoot(): void {
    if (this.#rootFd >= 0) closeSync(this.#rootFd);
    this.#rootFd = -1;
  }
}

