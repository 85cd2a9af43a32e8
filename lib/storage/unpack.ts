/**
 * The layer unpack: one layer tar (gzip, zstd or plain) into an empty directory, with OCI whiteouts
 * turned into overlayfs ones, and nothing created or changed outside that directory.
 *
 * How that is guaranteed: every entry name is checked (no absolute path, no `..`, no over-long
 * component); every parent directory is walked with lstat from the layer root and must be a real
 * directory that this unpack made or saw (a symlink in a parent position is refused, never
 * followed); an existing path that an entry replaces is removed first, and files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, so nothing is ever written through a link; hard link targets obey the
 * same rules and must already exist inside the layer. Path operations run one entry at a time, in
 * archive order (they take microseconds); only file contents are written concurrently, through the
 * fds opened for them, with a bound on the bytes in flight. The diff id (sha256 of the uncompressed
 * tar) is computed on the way.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as fsc,
  createReadStream,
  fchmodSync,
  fchownSync,
  futimesSync,
  linkSync,
  lchownSync,
  chmodSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  write as fsWrite,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { NsboxError } from '../errors.js';
import { native } from '../native.js';
import { overlayXattrPrefix } from '../privilege.js';
import { LayerError, isCode } from './errors.js';
import { TarReader, type TarEntry, type TarSink } from './tar-reader.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface UnpackOptions {
  /** Names the layer in errors ("layer sha256:…"); default the blob path. */
  name?: string;
  /** chown entries to the tar's uid/gid (default: when running as root). */
  preserveOwners?: boolean;
  /** Bytes of file content in flight at once (default 16 MiB). */
  maxPendingBytes?: number;
  /** Things that were skipped or could not be applied (an xattr the file system refuses). */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  entries: number;
  /** Sum of the regular files' sizes. */
  contentSize: number;
  compression: Compression;
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const NAME_MAX = 255;
const PATH_MAX = 4000;
const OPAQUE = '.wh..wh..opq';
const WH = '.wh.';

/** Compression by magic bytes (media types lie: docker pushes gzip as "tar" and back). */
export function sniffCompression(head: Buffer): Compression | 'bzip2' | 'xz' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head[0] === 0xfd && head.toString('latin1', 1, 6) === '7zXZ\0') return 'xz';
  return 'none';
}

interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
}

/** Applies one layer's entries under `root`, entry by entry. */
class LayerWriter {
  readonly #root: string;
  readonly #where: string;
  readonly #owners: boolean;
  readonly #maxPending: number;
  readonly #warn: (m: string) => void;
  /** Relative paths ('' = root) known to be real directories: made or lstat'ed by us. */
  readonly #dirs = new Set<string>(['']);
  readonly #dirMeta = new Map<string, DirMeta>();
  #pendingBytes = 0;
  #pendingFiles = 0;
  #waiters: (() => void)[] = [];
  /** Sinks whose body has not ended: abandoned ones must still close their fd. */
  readonly open = new Set<FileSink>();
  #failure: unknown;
  contentSize = 0;

  constructor(root: string, where: string, owners: boolean, maxPending: number, warn: (m: string) => void) {
    this.#root = root;
    this.#where = where;
    this.#owners = owners;
    this.#maxPending = maxPending;
    this.#warn = warn;
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
    if (name.includes('\0')) throw this.#refuse(entry, `has a NUL byte in its ${what === 'entry' ? 'name' : what}`);
    if (name.startsWith('/')) {
      throw this.#refuse(entry, what === 'entry' ? 'is an absolute path: it escapes the layer directory' : `has an absolute ${what} "${name}": it escapes the layer directory`);
    }
    const out: string[] = [];
    for (const c of name.split('/')) {
      if (c === '' || c === '.') continue;
      if (c === '..') {
        throw this.#refuse(entry, what === 'entry' ? 'escapes the layer directory (".." component)' : `has ${what} "${name}" that escapes the layer directory`);
      }
      if (Buffer.byteLength(c) > NAME_MAX) throw this.#refuse(entry, `has a name component longer than ${NAME_MAX} bytes`);
      out.push(c);
    }
    const rel = out.join('/');
    if (Buffer.byteLength(rel) > PATH_MAX) throw this.#refuse(entry, `has a ${what === 'entry' ? 'name' : what} longer than ${PATH_MAX} bytes`);
    return rel;
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
  };

  #whiteout(e: TarEntry, rel: string, base: string): undefined {
    const slash = rel.lastIndexOf('/');
    const dir = slash === -1 ? '' : rel.slice(0, slash);
    if (base === OPAQUE) {
      // the directory holding the marker hides everything below it in lower layers
      if (dir !== '') {
        this.#parents(`${dir}/x`, e.path, true);
      }
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
    let fd: number;
    try {
      fd = openSync(this.#abs(rel), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    } catch (err) {
      throw this.#fail(e.path, 'create', err);
    }
    this.contentSize += e.size;
    const sink = new FileSink(this, fd, e, rel);
    if (this.#pendingFiles >= 256) return this.#drain(0).then(() => sink);
    return sink;
  }

  /** Called by a FileSink once its content is written: owner, xattrs, mode, times, close. */
  finish(fd: number, e: TarEntry, rel: string): void {
    try {
      if (this.#owners) fchownSync(fd, e.uid, e.gid);
      if (e.xattrs.size) this.#xattrs(e, rel);
      fchmodSync(fd, e.mode);
      futimesSync(fd, e.atime ?? e.mtime, e.mtime);
    } finally {
      closeSync(fd);
    }
  }

  writeChunk(fd: number, chunk: Buffer, position: number, done: (err: unknown) => void): void | Promise<void> {
    this.#pendingBytes += chunk.length;
    fsWrite(fd, chunk, 0, chunk.length, position, (err, n) => {
      this.#pendingBytes -= chunk.length;
      if (!err && n !== chunk.length) {
        // short writes to regular files only happen on a full disk: write the rest
        this.writeChunk(fd, chunk.subarray(n), position + n, done);
      } else {
        done(err);
      }
      this.#wake();
    });
    if (this.#pendingBytes > this.#maxPending) return this.#drain(this.#maxPending);
  }

  fileStarted(): void {
    this.#pendingFiles++;
  }

  fileDone(err: unknown, entry: string): void {
    this.#pendingFiles--;
    if (err !== undefined && this.#failure === undefined) this.#failure = this.#fail(entry, 'write', err);
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Waits until at most `bytes` are in flight (0: until every file is done). */
  async #drain(bytes: number): Promise<void> {
    while (bytes === 0 ? this.#pendingFiles > 0 || this.#pendingBytes > 0 : this.#pendingBytes > bytes) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** A file with xattrs is finished before the next entry (xattrs are set by path). */
  async settle(): Promise<void> {
    await this.#drain(0);
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
      if (this.#owners) lchownSync(abs, e.uid, e.gid);
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
      // just made by mknod in a checked directory: chmod by path cannot meet a symlink here
      if (this.#owners) lchownSync(abs, e.uid, e.gid);
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
    await this.#drain(0);
    this.checkFailed();
    const dirs = [...this.#dirMeta].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, m] of dirs) {
      if (!this.#dirs.has(rel)) continue;
      const abs = this.#abs(rel);
      try {
        if (this.#owners) lchownSync(abs, m.uid, m.gid);
        chmodSync(abs, m.mode);
        lutimesSync(abs, m.atime, m.mtime);
      } catch (err) {
        throw this.#fail(rel || '.', 'set directory metadata', err);
      }
    }
  }

  /** On failure: wait for writes in flight so no fd outlives the unpack. */
  async abandon(): Promise<void> {
    for (const sink of [...this.open]) sink.abort();
    await this.#drain(0).catch(() => undefined);
  }

}

class FileSink implements TarSink {
  readonly #w: LayerWriter;
  readonly #fd: number;
  readonly #e: TarEntry;
  readonly #rel: string;
  #position = 0;
  #inflight = 1; // the sink itself until end()
  #error: unknown;
  #settled = false;

  constructor(w: LayerWriter, fd: number, e: TarEntry, rel: string) {
    this.#w = w;
    this.#fd = fd;
    this.#e = e;
    this.#rel = rel;
    w.fileStarted();
    w.open.add(this);
  }

  #done = (err: unknown): void => {
    if (err && this.#error === undefined) this.#error = err;
    if (--this.#inflight > 0) return;
    let error = this.#error;
    if (error === undefined) {
      try {
        this.#w.finish(this.#fd, this.#e, this.#rel);
      } catch (err2) {
        error = err2;
      }
    } else {
      closeSync(this.#fd);
    }
    this.#settled = true;
    this.#w.fileDone(error, this.#e.path);
  };

  write(chunk: Buffer): void | Promise<void> {
    this.#inflight++;
    const at = this.#position;
    this.#position += chunk.length;
    return this.#w.writeChunk(this.#fd, chunk, at, this.#done);
  }

  abort(): void {
    this.#w.open.delete(this);
    this.#done(new Error('unpack abandoned'));
  }

  end(): void | Promise<void> {
    this.#w.open.delete(this);
    this.#done(undefined);
    if (this.#e.xattrs.size && !this.#settled) return this.#w.settle();
  }
}

async function* decompressed(file: string, compression: Compression, where: string): AsyncGenerator<Buffer> {
  const input = createReadStream(file, { highWaterMark: 1 << 20 });
  if (compression === 'none') {
    yield* input as AsyncIterable<Buffer>;
    return;
  }
  if (compression === 'gzip') {
    const gunzip = zlib.createGunzip({ chunkSize: 1 << 17 });
    const done = pipeline(input, gunzip);
    done.catch(() => undefined);
    try {
      yield* gunzip as AsyncIterable<Buffer>;
    } catch (err) {
      throw new LayerError(`${where}: gzip: ${(err as Error).message} (corrupt or truncated layer)`, { cause: err });
    } finally {
      input.destroy();
      gunzip.destroy();
    }
    await done;
    return;
  }
  // zstd: Node 20's zlib has none; newer Node's does, else the zstd command
  const make = (zlib as unknown as { createZstdDecompress?: () => import('node:stream').Transform }).createZstdDecompress;
  if (make) {
    const unz = make();
    const done = pipeline(input, unz);
    done.catch(() => undefined);
    try {
      yield* unz as AsyncIterable<Buffer>;
    } finally {
      input.destroy();
      unz.destroy();
    }
    await done;
    return;
  }
  input.destroy();
  yield* zstdCommand(file, where);
}

async function* zstdCommand(file: string, where: string): AsyncGenerator<Buffer> {
  const child = spawn('zstd', ['-d', '-c', '-q', '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  try {
    yield* child.stdout as Readable as AsyncIterable<Buffer>;
    const code = await exited;
    if (code !== 0) throw new LayerError(`${where}: zstd -d failed (${code}): ${stderr.trim()}`);
  } catch (err) {
    if (isCode(err, 'ENOENT')) {
      throw new LayerError(`${where}: a zstd layer needs the zstd command (this Node has no zstd in zlib)`, { code: 'ENOTSUP', cause: err });
    }
    throw err;
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

/**
 * Unpacks the layer tar in `file` (gzip, zstd or plain, told apart by their first bytes) into `dest`,
 * an existing empty directory. Throws a LayerError naming the entry for anything unsafe; `dest` is
 * then left half-filled for the caller to remove.
 */
export async function unpackLayer(file: string, dest: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const where = opts.name ?? `layer ${file}`;
  const head = Buffer.alloc(6);
  const fd = openSync(file, fsc.O_RDONLY);
  try {
    readSync(fd, head, 0, 6, 0);
  } finally {
    closeSync(fd);
  }
  const compression = sniffCompression(head);
  if (compression === 'bzip2' || compression === 'xz') {
    throw new LayerError(`${where}: ${compression} layers are not supported (OCI layers are gzip, zstd or plain tar)`, { code: 'ENOTSUP' });
  }
  const root = path.resolve(dest);
  const st = lstatSync(root);
  if (!st.isDirectory()) throw new LayerError(`${where}: ${root} is not a directory`);
  const owners = opts.preserveOwners ?? process.geteuid?.() === 0;
  const writer = new LayerWriter(root, where, owners, opts.maxPendingBytes ?? 16 << 20, opts.onWarning ?? (() => undefined));
  const reader = new TarReader(writer.entry, where);
  const hash = createHash('sha256');
  let tarSize = 0;
  try {
    for await (const chunk of decompressed(file, compression, where)) {
      opts.signal?.throwIfAborted();
      hash.update(chunk);
      tarSize += chunk.length;
      await reader.write(chunk);
    }
    reader.end();
    await writer.complete();
  } catch (err) {
    await writer.abandon();
    throw err;
  }
  return { diffId: `sha256:${hash.digest('hex')}`, tarSize, entries: reader.entries, contentSize: writer.contentSize, compression };
}
