/**
 * `RootDir`: a container's root directory held by an fd, and every path inside it resolved by the
 * kernel as if that directory were `/` (openat2 RESOLVE_IN_ROOT): `..`, absolute symlinks and
 * symlinks to `..` stop at the root, whatever the container put there (docker resolves its cp paths
 * "in scope" the same way). The last component of a path is handled by the caller through its
 * parent's fd (`/proc/self/fd/N/name`), so it is never followed unless the caller wants it to be.
 */
import { closeSync, constants as fsc, fstatSync, lstatSync, readlinkSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { NsboxError, NotFoundError, ValidationError } from '../errors.js';
import { native } from '../native.js';

/** openat2's resolve bits (linux/openat2.h). */
export const RESOLVE = { NO_XDEV: 0x01, NO_MAGICLINKS: 0x02, NO_SYMLINKS: 0x04, BENEATH: 0x08, IN_ROOT: 0x10 } as const;
/** O_PATH (not in node's fs.constants): an fd that names a file without opening it for I/O. */
export const O_PATH = 0o10000000;
const AT_FDCWD = -100;

/** A path through an fd: the kernel follows the fd's magic link, then the rest by name. */
export const fdPath = (fd: number, name = ''): string => (name ? `/proc/self/fd/${fd}/${name}` : `/proc/self/fd/${fd}`);

/** `path` made absolute and clean in the container (`a/../b` → `/b`); whether it ended with `/` or `/.`. */
export function containerPath(path: string): { clean: string; trailingSlash: boolean; trailingDot: boolean } {
  if (path === '') throw new ValidationError('a path in the container must not be empty', 'path');
  if (path.includes('\0')) throw new ValidationError('a path in the container must not contain NUL', 'path');
  return { clean: posix.resolve('/', path), trailingSlash: path.endsWith('/'), trailingDot: path === '.' || path.endsWith('/.') };
}

export class RootDir {
  readonly fd: number;
  readonly #release: () => Promise<void>;
  #closed = false;

  constructor(fd: number, release: () => Promise<void> = async () => undefined) {
    this.fd = fd;
    this.#release = release;
  }

  /** A directory of the host (or `/` for the host's own paths) as a root. */
  static ofDir(dir: string): RootDir {
    return new RootDir(native.openAt2(AT_FDCWD, dir, O_PATH | fsc.O_DIRECTORY, 0, 0));
  }

  /** openat2 of `path` (absolute or not: the same, inside this root), every symlink resolved in the root. */
  open(path: string, flags: number, mode = 0): number {
    return native.openAt2(this.fd, path, flags, mode, RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS);
  }

  /**
   * The parent directory of `path` (resolved in the root), as an O_PATH fd the caller closes, and
   * the last component's name ('' for the root itself, which then is the fd).
   */
  parent(path: string): { dirfd: number; base: string } {
    const clean = posix.resolve('/', path);
    if (clean === '/') return { dirfd: this.open('/', O_PATH | fsc.O_DIRECTORY), base: '' };
    return { dirfd: this.open(posix.dirname(clean), O_PATH | fsc.O_DIRECTORY), base: posix.basename(clean) };
  }

  /** lstat of `path`'s last component (its parents resolved in the root); undefined when absent. */
  lstat(path: string): Stats | undefined {
    let p: { dirfd: number; base: string };
    try {
      p = this.parent(path);
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
      throw e;
    }
    try {
      return p.base ? lstatSync(fdPath(p.dirfd, p.base), { throwIfNoEntry: false }) : fstatSync(p.dirfd);
    } finally {
      closeSync(p.dirfd);
    }
  }

  /**
   * Where `path` leads in the container once every symlink is followed, in the root's scope
   * (docker's FollowSymlinkInScope): a clean absolute path, which may not exist.
   */
  followInScope(path: string): string {
    const parts = posix.resolve('/', path).split('/').filter(Boolean);
    let at = '/';
    let hops = 0;
    while (parts.length) {
      const next = posix.join(at, parts.shift()!);
      const st = this.lstat(next);
      if (!st?.isSymbolicLink()) {
        at = next;
        continue;
      }
      if (++hops > 40) throw new NsboxError(`${path}: too many levels of symbolic links`, { code: 'ELOOP', path });
      const { dirfd, base } = this.parent(next);
      let target: string;
      try {
        target = readlinkSync(fdPath(dirfd, base));
      } finally {
        closeSync(dirfd);
      }
      parts.unshift(...target.split('/').filter(Boolean));
      if (target.startsWith('/')) at = '/';
    }
    return at;
  }

  /** Gives the root up (and whatever held it: a helper's mount namespace). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.fd);
    await this.#release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export function isErrno(e: unknown, code: string): boolean {
  return (e as { code?: string } | undefined)?.code === code;
}

/** docker's "Could not find the file X in container Y" for a path that is not there. */
export function noSuchPath(path: string, container: string): NotFoundError {
  return new NotFoundError(`Could not find the file ${path} in container ${container}`, { code: 'ENOENT', path });
}
