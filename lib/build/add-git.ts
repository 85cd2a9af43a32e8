/**
 * ADD of a git repository, as BuildKit does it: `ADD https://host/repo.git#ref:subdir /dst` (also
 * `git@host:repo.git`, `git://…`, `ssh://…`) copies the tree of the commit `ref` names (a branch,
 * a tag or a commit; default the remote's HEAD), or of its `subdir`, into `/dst`, with its
 * submodules, and without `.git` unless `--keep-git-dir=true`. The repository is fetched by the
 * host's git into a private directory (shallow when the server allows it); the step's cache key
 * is the commit (plus the subdir and whether .git is kept), not the checkout's bytes, so a kept
 * .git, whose index holds times, still hits.
 */
import { execFile } from 'node:child_process';
import { mkdir, realpath, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { NotFoundError, NsboxError, ValidationError } from '../errors.js';
import { ContextDir, type SourceTree } from './source-tree.js';
import { hashKey } from './stage-state.js';

const run = promisify(execFile);

export interface GitSource {
  /** The repository as git is given it (the fragment cut off). */
  remote: string;
  ref: string | undefined;
  subdir: string;
}

/** `url#ref:subdir` → its parts. */
export function parseGitSource(source: string): GitSource {
  const hash = source.indexOf('#');
  const remote = hash < 0 ? source : source.slice(0, hash);
  const fragment = hash < 0 ? '' : source.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = (colon < 0 ? fragment : fragment.slice(0, colon)) || undefined;
  const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
  if (ref !== undefined && (ref.startsWith('-') || /[\s~^:?*[\\]|\.\.|@\{/.test(ref))) throw new ValidationError(`invalid git ref ${JSON.stringify(ref)} in ${source}`, 'dockerfile');
  if (path.posix.normalize(`/${subdir}`).split('/').includes('..')) throw new ValidationError(`invalid git subdirectory ${JSON.stringify(subdir)} in ${source}`, 'dockerfile');
  return { remote, ref, subdir };
}

export interface GitCheckout {
  tree: SourceTree;
  /** The one item to copy: the tree's root (its contents go into the destination). */
  items: string[];
  /** The step's key for the source: commit, subdir and whether .git is kept. */
  digest: string;
  commit: string;
}

async function git(args: string[], cwd: string | undefined, what: string): Promise<string> {
  try {
    const { stdout } = await run('git', args, {
      ...(cwd ? { cwd } : {}),
      maxBuffer: 16 << 20,
      // no prompt for a password, no system or user configuration steering the fetch
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes' },
    });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new NotFoundError(`${what}: git is not installed`, { path: 'git' });
    throw new NsboxError(`${what}: ${(err.stderr ?? err.message).trim()}`, { code: 'ERR_BUILD', cause: e });
  }
}

/** Fetches `source` and checks it out in `dir` (made here; the caller removes it). */
/** `checksum`: the commit id (or a prefix of it) the ref must name, as BuildKit's ADD --checksum for git. */
export async function checkoutGit(source: string, dir: string, keepGitDir: boolean, checksum?: string): Promise<GitCheckout> {
  if (checksum !== undefined && !/^[0-9a-f]{7,40}$/.test(checksum)) throw new ValidationError(`--checksum=${checksum}: expected a git commit id`, 'dockerfile');
  const { remote, ref, subdir } = parseGitSource(source);
  const what = `failed to fetch ${source}`;
  const repo = path.join(dir, 'repo');
  await mkdir(repo, { recursive: true, mode: 0o700 });
  await git(['init', '-q', repo], undefined, what);
  await git(['remote', 'add', 'origin', remote], repo, what);
  const want = ref ?? 'HEAD';
  // shallow first; a dumb HTTP server or a commit a server will not hand out by id needs the whole history
  try {
    await git(['fetch', '-q', '--depth=1', '--no-tags', 'origin', want], repo, what);
  } catch {
    // shallow refused (dumb HTTP, or a commit id the server will not hand out): the whole history
    await git(['fetch', '-q', '--tags', 'origin', ...(ref === undefined || /^[0-9a-f]{7,40}$/.test(ref) ? [] : [want])], repo, what);
  }
  const target = ref === undefined || !/^[0-9a-f]{7,40}$/.test(ref) ? 'FETCH_HEAD' : ref;
  let commit: string;
  try {
    commit = (await git(['rev-parse', '--verify', '-q', `${target}^{commit}`], repo, what)).trim();
  } catch {
    // rev-parse's only failure here: the ref names nothing fetched
    throw new NotFoundError(`${what}: no commit ${ref ?? 'HEAD'} in ${remote}`, { path: source });
  }
  if (checksum !== undefined && !commit.startsWith(checksum)) throw new NsboxError(`${what}: expected checksum to match ${checksum}, got ${commit}`, { code: 'ERR_BUILD' });
  await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', commit], repo, what);
  const hasModules = await stat(path.join(repo, '.gitmodules')).then(
    () => true,
    // ENOENT: no submodules
    () => false,
  );
  if (hasModules) await git(['submodule', 'update', '-q', '--init', '--recursive', '--depth=1'], repo, what);
  if (!keepGitDir) await rm(path.join(repo, '.git'), { recursive: true, force: true });
  let root = repo;
  if (subdir) {
    // the subdir is a path in the checkout, never out of it (a symlink in the repository may point anywhere)
    // a subdir that does not exist is refused below
    const real = await realpath(path.join(repo, subdir)).catch(() => undefined);
    const base = await realpath(repo);
    if (!real || (real !== base && !real.startsWith(`${base}/`)) || !(await stat(real)).isDirectory()) throw new NotFoundError(`${what}: ${subdir} is not a directory of ${remote} at ${commit.slice(0, 12)}`, { path: subdir });
    root = real;
  }
  return { tree: new ContextDir(root, ''), items: [''], digest: hashKey('git', commit, subdir, keepGitDir), commit };
}
