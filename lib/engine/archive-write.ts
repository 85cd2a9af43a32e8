/**
 * The write half of docker cp: a tar extracted into a directory of a container, as
 * `PUT /containers/{id}/archive` does it.
 *
 * Each entry's parent is resolved in the container's root (openat2 RESOLVE_IN_ROOT: a symlink on
 * the way, even one the container swaps in meanwhile, is followed only as if the root were `/`), and
 * the entry itself is made by name under that parent's fd, with O_NOFOLLOW / O_EXCL, after whatever
 * was there is removed: nothing is ever written through a link, and nothing outside the root.
 * Entry names and hard link targets may not be absolute or climb out with `..`.
 */
import { closeSync, constants as fsc, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { write } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { ArchiveError, NsboxError } from '../errors.js';
import { native } from '../native.js';
import { decompress } from '../storage/decompress.js';
import { cleanEntryName } from '../storage/entry-name.js';
import { TarReader, type TarEntry, type TarSink } from '../storage/tar-reader.js';
import { containerPath, fdPath, isErrno, O_PATH, RESOLVE, type RootDir } from './in-root.js';

const writeAsync = promisify(write);
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

export interface ExtractOptions {
  /** docker's noOverwriteDirNonDir: an entry may not replace a directory by a non-directory or the reverse. */
  noOverwriteDirNonDir?: boolean;
  /** docker's copyUIDGID: keep the archive's owners; otherwise every entry is root's (0:0). */
  copyUIDGID?: boolean;
}

/**
 * Extracts the tar (gzip, zstd or plain) under `dir` in the root, which must be a directory.
 * Resolves once every entry is written.
 */
export async function extractArchive(root: RootDir, dir: string, tar: AsyncIterable<Buffer>, opts: ExtractOptions = {}): Promise<void> {
  const { clean } = containerPath(dir);
  const st = root.lstat(root.followInScope(clean));
  if (!st) throw new NsboxError(`${dir}: no such file or directory`, { code: 'ENOENT', path: dir });
  if (!st.isDirectory()) throw new NsboxError(`extraction point is not a directory: ${dir}`, { code: 'ENOTDIR', path: dir });
  const x = new Extractor(root, clean, opts);
  const reader = new TarReader(x.entry, `archive for ${dir}`);
  const input = await decompress(tar, `archive for ${dir}`);
  for await (const chunk of input.chunks) await reader.write(chunk);
  reader.end();
  x.finish();
}

class Extractor {
  readonly #root: RootDir;
  readonly #dir: string;
  readonly #opts: ExtractOptions;
  readonly #chown: boolean;
  /** Directories' times, set last (their entries change them). */
  readonly #dirTimes: Array<{ path: string; mtime: number }> = [];

  constructor(root: RootDir, dir: string, opts: ExtractOptions) {
    this.#root = root;
    this.#dir = dir;
    this.#opts = opts;
    this.#chown = process.geteuid?.() === 0;
  }

  #refuse(e: TarEntry, why: string): ArchiveError {
    return new ArchiveError(`archive entry "${e.path}" ${why}`, { code: 'ERR_ARCHIVE_UNSAFE', path: e.path });
  }

  /** The entry's path in the container (clean, absolute). */
  #target(name: string, e: TarEntry, what = 'entry'): string {
    const rel = cleanEntryName(name, what, (why) => this.#refuse(e, why));
    return rel === '' ? this.#dir : posix.join(this.#dir, rel);
  }

  /** The parent directory's fd (made, as tar does, when missing); the caller closes it. */
  #parent(path: string): { dirfd: number; base: string } {
    const parentPath = posix.dirname(path);
    try {
      return { dirfd: this.#root.open(parentPath, O_PATH | fsc.O_DIRECTORY), base: posix.basename(path) };
    } catch (e) {
      if (!isErrno(e, 'ENOENT') || parentPath === this.#dir || parentPath === '/') throw e;
    }
    const up = this.#parent(parentPath);
    try {
      mkdirSync(fdPath(up.dirfd, up.base), 0o755);
    } finally {
      closeSync(up.dirfd);
    }
    return this.#parent(path);
  }

  #owner(e: TarEntry): { uid: number; gid: number } {
    return this.#opts.copyUIDGID ? { uid: e.uid, gid: e.gid } : { uid: 0, gid: 0 };
  }

  /** Removes what is at `at` for an entry of type `type`; a directory stays for a directory. */
  #clear(at: string, e: TarEntry): 'dir' | undefined {
    const st = lstatSync(at, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (this.#opts.noOverwriteDirNonDir && st.isDirectory() !== (e.type === 'dir')) {
      throw this.#refuse(e, st.isDirectory() ? 'would replace a directory by a non-directory' : 'would replace a non-directory by a directory');
    }
    if (st.isDirectory()) {
      if (e.type === 'dir') return 'dir';
      rmSync(at, { recursive: true, force: true });
    } else unlinkSync(at);
    return undefined;
  }

  entry = (e: TarEntry): TarSink | undefined | Promise<TarSink | undefined> => {
    const path = this.#target(e.path, e);
    if (path === this.#dir && e.type === 'dir') return undefined;
    if (path === this.#dir) throw this.#refuse(e, 'would replace the extraction directory');
    const { dirfd, base } = this.#parent(path);
    try {
      const at = fdPath(dirfd, base);
      const had = this.#clear(at, e);
      const { uid, gid } = this.#owner(e);
      switch (e.type) {
        case 'dir':
          if (!had) mkdirSync(at, e.mode & 0o7777);
          if (this.#chown) lchownSync(at, uid, gid);
          this.#setMode(dirfd, base, e.mode);
          this.#dirTimes.push({ path, mtime: e.mtime });
          return undefined;
        case 'symlink':
          symlinkSync(e.linkpath, at);
          if (this.#chown) lchownSync(at, uid, gid);
          lutimesSync(at, e.mtime, e.mtime);
          return undefined;
        case 'link': {
          const target = this.#parent(this.#target(e.linkpath, e, 'hard link target'));
          try {
            linkSync(fdPath(target.dirfd, target.base), at);
          } finally {
            closeSync(target.dirfd);
          }
          return undefined;
        }
        case 'char':
        case 'block':
        case 'fifo': {
          const type = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO;
          native.mknod(at, type | (e.mode & 0o7777), e.devmajor, e.devminor);
          if (this.#chown) lchownSync(at, uid, gid);
          lutimesSync(at, e.mtime, e.mtime);
          return undefined;
        }
        case 'file': {
          const fd = native.openAt2(dirfd, base, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600, RESOLVE.NO_SYMLINKS);
          return this.#fileSink(fd, e, uid, gid);
        }
      }
    } finally {
      closeSync(dirfd);
    }
  };

  #setMode(dirfd: number, base: string, mode: number): void {
    // By an fd of the directory itself: chmod by name would follow a link swapped in meanwhile.
    const fd = native.openAt2(dirfd, base, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW, 0, RESOLVE.NO_SYMLINKS);
    try {
      fchmodSync(fd, mode & 0o7777);
    } finally {
      closeSync(fd);
    }
  }

  #fileSink(fd: number, e: TarEntry, uid: number, gid: number): TarSink {
    const chown = this.#chown;
    return {
      async write(chunk: Buffer) {
        let off = 0;
        while (off < chunk.length) off += (await writeAsync(fd, chunk, off, chunk.length - off)).bytesWritten;
      },
      end() {
        try {
          if (chown) fchownSync(fd, uid, gid);
          // after the chown, which clears setuid and setgid bits
          fchmodSync(fd, e.mode & 0o7777);
          futimesSync(fd, e.atime ?? e.mtime, e.mtime);
        } finally {
          closeSync(fd);
        }
      },
    };
  }

  /** Directories' times, deepest first, once nothing more is written in them. */
  finish(): void {
    for (const d of this.#dirTimes.reverse()) {
      let fd: number;
      try {
        fd = this.#root.open(d.path, O_PATH | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
      } catch (e) {
        // Replaced by a later entry of the same archive: its time is that entry's.
        if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR') || isErrno(e, 'ELOOP')) continue;
        throw e;
      }
      try {
        lutimesSync(fdPath(fd, '.'), d.mtime, d.mtime);
      } finally {
        closeSync(fd);
      }
    }
  }
}
