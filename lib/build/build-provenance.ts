/**
 * What a build's provenance says about its inputs: a digest of the context (every file the
 * .dockerignore lets in: path, mode, link target or content), and the context's git HEAD and
 * origin URL when it is in a git work tree (read from .git directly: no git binary needed).
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { isCode } from '../errors.js';
import type { FileDigests } from './file-digests.js';
import type { ContextDir } from './source-tree.js';

/**
 * sha256 over the context's files in name order, as the build sees them (ignored files left out):
 * each file's own sha256, from `digests` when it knows the file unchanged.
 */
export async function contextDigest(ctx: ContextDir, digests?: FileDigests): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(ctx.dir, rel), { withFileTypes: true });
    } catch (err) {
      // a directory removed while the build reads it: it is not part of the context
      if (isCode(err, 'ENOENT')) return;
      throw err;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = ctx.lstat(r);
      if (!st) continue;
      const abs = path.join(ctx.dir, r);
      hash.update(`${r}\0${st.mode.toString(8)}\0`);
      if (st.isDirectory()) await walk(r);
      else if (st.isSymbolicLink()) hash.update(`${await readlink(abs)}\0`);
      else if (st.isFile()) {
        if (digests) hash.update(`${digests.digest(ctx.dir, r, st)}\0`);
        else {
          const h = createHash('sha256');
          for await (const chunk of createReadStream(abs)) h.update(chunk as Buffer);
          hash.update(`${h.digest('hex')}\0`);
        }
      }
    }
  };
  await walk('');
  return `sha256:${hash.digest('hex')}`;
}

/** One file gitRevision looked at, and what it found (the fast record's, build-fast-record.ts). */
export type GitRead = { file: string; found: 'absent' | 'dir' | 'other' } | { file: string; found: 'text'; text: string };

async function readText(file: string, reads?: GitRead[]): Promise<string | undefined> {
  try {
    const text = await readFile(file, 'utf8');
    reads?.push({ file, found: 'text', text });
    return text;
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) {
      reads?.push({ file, found: 'absent' });
      return undefined;
    }
    throw err;
  }
}

/** The git work tree's HEAD commit and origin URL above `dir`, when there is one. */
export async function gitRevision(dir: string, reads?: GitRead[]): Promise<{ revision?: string; source?: string }> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    let gitDir = path.join(d, '.git');
    const st = await lstat(gitDir).catch((err: unknown) => (isCode(err, 'ENOENT') ? undefined : Promise.reject(err)));
    if (!st || !st.isFile()) reads?.push({ file: gitDir, found: !st ? 'absent' : st.isDirectory() ? 'dir' : 'other' });
    if (st?.isFile()) {
      // a worktree or submodule: `gitdir: PATH`
      const to = /^gitdir: (.+)$/m.exec((await readText(gitDir, reads)) ?? '')?.[1];
      if (to) gitDir = path.resolve(d, to.trim());
    }
    if (st) return readGit(gitDir, reads);
    if (path.dirname(d) === d) return {};
  }
}

async function readGit(gitDir: string, reads?: GitRead[]): Promise<{ revision?: string; source?: string }> {
  const head = (await readText(path.join(gitDir, 'HEAD'), reads))?.trim();
  // a linked worktree keeps refs and config in the common dir
  const common = (await readText(path.join(gitDir, 'commondir'), reads))?.trim();
  const commonDir = common ? path.resolve(gitDir, common) : gitDir;
  let revision: string | undefined;
  if (head && /^[0-9a-f]{40}$/.test(head)) revision = head;
  else if (head?.startsWith('ref: ')) {
    const ref = head.slice(5);
    revision = (await readText(path.join(gitDir, ref), reads))?.trim() ?? (await readText(path.join(commonDir, ref), reads))?.trim();
    if (!revision) {
      const packed = (await readText(path.join(commonDir, 'packed-refs'), reads)) ?? '';
      revision = packed.split('\n').find((l) => l.endsWith(` ${ref}`))?.slice(0, 40);
    }
  }
  const config = (await readText(path.join(commonDir, 'config'), reads)) ?? '';
  const origin = /\[remote "origin"\][^[]*?url\s*=\s*(\S+)/.exec(config)?.[1];
  return { ...(revision && /^[0-9a-f]{40}$/.test(revision) ? { revision } : {}), ...(origin ? { source: origin } : {}) };
}
