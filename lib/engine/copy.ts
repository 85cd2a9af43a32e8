/**
 * docker cp's rules between two roots (a container's, or the host's `/`), for `nsbox cp` and the
 * SDK's copyTo/copyFrom. SRC a file: to DEST as a file, or into DEST when it is a directory; a
 * DEST ending in `/` must be an existing directory. SRC a directory: DEST missing is made with
 * SRC's contents; DEST an existing directory gets SRC inside it, or SRC's contents when SRC ends
 * in `/.`; DEST a file is an error. DEST's parent must exist. The copy itself is a tar of SRC
 * (archive-read.ts) extracted under DEST's directory (archive-write.ts), so both ends are resolved
 * in their roots.
 */
import { posix } from 'node:path';
import { NsboxError, NotFoundError } from '../errors.js';
import { headerBlocks } from '../build/diff-tar.js';
import { archivePath, isGoDir, statPath } from './archive-read.js';
import { extractArchive } from './archive-write.js';
import { containerPath, type RootDir } from './in-root.js';

export interface CopyOptions {
  /** docker cp -a: keep the owners of SRC (otherwise root's in a container, as docker does). */
  copyUIDGID?: boolean;
  /** docker cp -L: a SRC that is a symlink is copied as what it leads to. */
  followLink?: boolean;
  /** DEST's missing parent directories are made (the SDK's `files`), instead of docker's error. */
  makeParents?: boolean;
  /** For messages: "container web" / "the host". */
  fromName?: string;
  toName?: string;
}

/** Copies `src` of `from` to `dest` of `to` (see the header). */
export async function copyPath(from: RootDir, src: string, to: RootDir, dest: string, opts: CopyOptions = {}): Promise<void> {
  const s = containerPath(src);
  let srcPath = src;
  let srcStat = statPath(from, src);
  if (!srcStat) throw new NotFoundError(`Could not find the file ${src} in ${opts.fromName ?? 'the source'}`, { code: 'ENOENT', path: src });
  if (opts.followLink && srcStat.linkTarget) {
    srcPath = srcStat.linkTarget;
    srcStat = statPath(from, srcPath);
    if (!srcStat) throw new NotFoundError(`Could not find the file ${srcPath} (the link ${src} leads there) in ${opts.fromName ?? 'the source'}`, { code: 'ENOENT', path: srcPath });
  }
  const srcIsDir = isGoDir(srcStat.mode);
  const d = containerPath(dest);
  // DEST is looked at through its links: docker copies into the directory a link leads to.
  const destTarget = to.followInScope(d.clean);
  const destStat = statPath(to, destTarget);
  const destIsDir = destStat !== undefined && isGoDir(destStat.mode);
  const where = opts.toName ?? 'the destination';
  let dir: string;
  let name: string;
  if (destIsDir) {
    dir = destTarget;
    name = srcIsDir && s.trailingDot ? '.' : posix.basename(posix.resolve('/', srcPath)) || '.';
  } else {
    if (destStat && srcIsDir) throw new NsboxError(`cannot copy a directory to a file: ${dest} in ${where} is not a directory`, { code: 'ENOTDIR', path: dest });
    if (!destStat && d.trailingSlash) throw new NotFoundError(`${dest}: no such directory in ${where}`, { code: 'ENOENT', path: dest });
    dir = posix.dirname(destTarget);
    name = posix.basename(destTarget);
    let parent = statPath(to, dir);
    if (!parent && opts.makeParents) {
      await extractArchive(to, '/', oneEntry(headerBlocks({ name: `${dir.slice(1)}/`, type: '5', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: Math.floor(Date.now() / 1000) })));
      parent = statPath(to, dir);
    }
    if (!parent || !isGoDir(parent.mode)) throw new NotFoundError(`${posix.dirname(d.clean)}: no such directory in ${where}`, { code: 'ENOENT', path: dest });
  }
  await extractArchive(to, dir, archivePath(from, srcPath, name), { copyUIDGID: opts.copyUIDGID ?? false });
}

/** Writes `data` as the file `dest` of `to` (its missing parent directories made), root's and `mode` (0644). */
export async function copyBuffer(to: RootDir, data: Buffer, dest: string, mode = 0o644): Promise<void> {
  const d = containerPath(dest);
  if (d.trailingSlash || d.clean === '/') throw new NsboxError(`${dest}: a buffer is copied to a file path, not a directory`, { code: 'EISDIR', path: dest });
  const existing = statPath(to, to.followInScope(d.clean));
  if (existing && isGoDir(existing.mode)) throw new NsboxError(`${dest} is a directory: a buffer is copied to a file path`, { code: 'EISDIR', path: dest });
  const target = to.followInScope(d.clean);
  const blocks = headerBlocks({ name: target.slice(1), type: '0', mode, uid: 0, gid: 0, size: data.length, mtime: Math.floor(Date.now() / 1000) });
  await extractArchive(to, '/', oneEntry([...blocks, data, Buffer.alloc((512 - (data.length % 512)) % 512)]));
}

/** A tar of one entry's blocks, ended. */
async function* oneEntry(blocks: Buffer[]): AsyncGenerator<Buffer> {
  yield* blocks;
  yield Buffer.alloc(1024);
}
