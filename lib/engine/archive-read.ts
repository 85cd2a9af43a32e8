/**
 * The read half of docker cp: the stat of a path in a container (the API's
 * `X-Docker-Container-Path-Stat`) and a tar of it, as `GET /containers/{id}/archive` gives them.
 *
 * Paths are resolved in the container's root (in-root.ts); the walk then goes down by directory
 * fds, naming each child under its parent's fd and opening it with O_NOFOLLOW, so a symlink the
 * container swaps in while the tar is made is archived as a link, never followed out of the root.
 * A symlink named by the path itself is archived as the link (docker's default; `-L` is the
 * client's, through the stat's linkTarget).
 */
import { closeSync, constants as fsc, fstatSync, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { read } from 'node:fs';
import { promisify } from 'node:util';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { headerBlocks } from '../build/diff-tar.js';
import { ArchiveError, NsboxError } from '../errors.js';
import { native } from '../native.js';
import { containerPath, fdPath, RESOLVE, type RootDir } from './in-root.js';

const readAsync = promisify(read);
const BLOCK = 512;

/** docker's container path stat (the header's JSON): Go's os.FileMode bits in `mode`. */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Go's os.FileMode from a stat: the permission bits with Go's type and special bits on top. */
export function goFileMode(st: Stats): number {
  let m = st.mode & 0o777;
  const bit = (n: number) => (m = (m + 2 ** n) >>> 0);
  if (st.isDirectory()) bit(31);
  else if (st.isSymbolicLink()) bit(27);
  else if (st.isBlockDevice()) bit(26);
  else if (st.isCharacterDevice()) (bit(26), bit(21));
  else if (st.isFIFO()) bit(25);
  else if (st.isSocket()) bit(24);
  if (st.mode & 0o4000) bit(23);
  if (st.mode & 0o2000) bit(22);
  if (st.mode & 0o1000) bit(20);
  return m;
}

export const isGoDir = (mode: number): boolean => mode >= 2 ** 31;

/** `X-Docker-Container-Path-Stat`: the stat's JSON in base64. */
export const statHeader = (s: PathStat): string => Buffer.from(JSON.stringify(s)).toString('base64');

/**
 * The stat of `path` in the root (a symlink itself, its target in `linkTarget`, resolved in scope);
 * undefined when it is not there. A path ending in `/` must be a directory (ENOTDIR otherwise).
 */
export function statPath(root: RootDir, path: string): PathStat | undefined {
  const { clean, trailingSlash, trailingDot } = containerPath(path);
  // `dir/` and `dir/.` name the directory a link leads to, not the link (docker resolves them in scope).
  const at = trailingSlash || trailingDot ? root.followInScope(clean) : clean;
  const st = root.lstat(at);
  if (!st) return undefined;
  if ((trailingSlash || trailingDot) && !st.isDirectory()) throw new NsboxError(`${path}: not a directory`, { code: 'ENOTDIR', path });
  const linkTarget = st.isSymbolicLink() ? root.followInScope(at) : '';
  return { name: at === '/' ? '/' : posix.basename(at), size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget };
}

type Header = Parameters<typeof headerBlocks>[0];

function deviceNumbers(st: Stats): { devmajor: number; devminor: number } {
  return { devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: (st.rdev & 0xff) | (Math.floor(st.rdev / 4096) & 0xfff00) };
}

/**
 * The tar of `path` in the root, its entries named under `rebase` (docker: the path's base name;
 * `.` for a path ending in `/.`, whose entries are then the directory's contents). A path through a
 * symlink (a parent that is one, or a trailing `/`) is followed in scope; the last component is not.
 */
export function archivePath(root: RootDir, path: string, rebase?: string): Readable {
  const { clean, trailingSlash, trailingDot } = containerPath(path);
  // docker archives a symlink named with a trailing slash or `/.` as the directory it leads to.
  const target = trailingSlash || trailingDot ? root.followInScope(clean) : clean;
  const name = rebase ?? (trailingDot ? '.' : clean === '/' ? '.' : posix.basename(clean));
  return Readable.from(walkArchive(root, target, name), { objectMode: false });
}

async function* walkArchive(root: RootDir, path: string, name: string): AsyncGenerator<Buffer> {
  const { dirfd, base } = root.parent(path);
  const links = new Map<string, string>();
  try {
    const st = base ? lstatSync(fdPath(dirfd, base), { throwIfNoEntry: false }) : fstatSync(dirfd);
    if (!st) throw new NsboxError(`${path}: no such file or directory`, { code: 'ENOENT', path });
    yield* entry(dirfd, base, st, name, links);
    yield Buffer.alloc(2 * BLOCK);
  } finally {
    closeSync(dirfd);
  }
}

/** One entry and, for a directory, everything under it; `dirfd`+`base` name it ('' = dirfd itself). */
async function* entry(dirfd: number, base: string, st: Stats, name: string, links: Map<string, string>): AsyncGenerator<Buffer> {
  const h: Omit<Header, 'name' | 'type'> = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000) };
  const at = fdPath(dirfd, base);
  if (st.isDirectory()) {
    yield* headerBlocks({ ...h, name: name.endsWith('/') ? name : `${name}/`, type: '5' });
    const fd = base ? native.openAt2(dirfd, base, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW, 0, RESOLVE.NO_SYMLINKS) : native.openAt2(dirfd, '.', fsc.O_RDONLY | fsc.O_DIRECTORY, 0, 0);
    try {
      const names = readdirSync(fdPath(fd)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const child of names) {
        const cst = lstatSync(fdPath(fd, child), { throwIfNoEntry: false });
        // Removed while the tar is made: it is simply not in it.
        if (!cst) continue;
        yield* entry(fd, child, cst, name === '.' ? child : `${name.replace(/\/$/, '')}/${child}`, links);
      }
    } finally {
      closeSync(fd);
    }
  } else if (st.isSymbolicLink()) {
    yield* headerBlocks({ ...h, name, type: '2', linkname: readlinkSync(at) });
  } else if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first !== undefined) {
      yield* headerBlocks({ ...h, name, type: '1', linkname: first });
      return;
    }
    if (st.nlink > 1) links.set(key, name);
    const fd = native.openAt2(dirfd, base || '.', fsc.O_RDONLY | fsc.O_NOFOLLOW, 0, RESOLVE.NO_SYMLINKS);
    try {
      yield* headerBlocks({ ...h, name, type: '0', size: st.size });
      yield* content(fd, st.size, name);
    } finally {
      closeSync(fd);
    }
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    yield* headerBlocks({ ...h, name, type: st.isCharacterDevice() ? '3' : '4', ...deviceNumbers(st) });
  } else if (st.isFIFO()) {
    yield* headerBlocks({ ...h, name, type: '6' });
  }
  // Sockets are left out, as docker leaves them out.
}

async function* content(fd: number, size: number, name: string): AsyncGenerator<Buffer> {
  let done = 0;
  while (done < size) {
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, size - done));
    const { bytesRead } = await readAsync(fd, buf, 0, buf.length, done);
    if (bytesRead === 0) break;
    yield buf.subarray(0, bytesRead);
    done += bytesRead;
  }
  if (done !== size) throw new ArchiveError(`${name} changed size while it was archived (${done} of ${size} bytes)`);
  const pad = (BLOCK - (size % BLOCK)) % BLOCK;
  if (pad) yield Buffer.alloc(pad);
}

