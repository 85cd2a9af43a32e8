/**
 * A build's own run directory, `<runRoot>/build/<token>/`: its RUN containers' directories (upper,
 * work, root), secret files and bind copies. The build holds an flock on the directory for its
 * life; the kernel drops it when the process dies, however it dies. The next build (and the
 * engine's start-up) sweeps every directory whose lock it can take: the cgroups of the containers
 * in it, the directory, and the build's temp files in the store (`build-<token>-…`). A killed
 * build's processes are gone already: a RUN is an in-process container, killed with its parent.
 */
import { closeSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Cgroup } from '../cgroup/cgroup.js';
import { NotFoundError, isCode, reportCleanupError } from '../errors.js';
import { constants, native } from '../native.js';

const TOKEN = /^[0-9a-f]{16}$/;

export class BuildRunDir {
  private constructor(
    readonly token: string,
    readonly dir: string,
    private fd: number | undefined,
  ) {}

  /** Makes and locks a new run directory under `base`. */
  static claim(base: string): BuildRunDir {
    mkdirSync(base, { recursive: true, mode: 0o700 });
    const token = randomBytes(8).toString('hex');
    // locked under a temporary name, so a sweep never sees it unlocked
    const fresh = path.join(base, `.new-${token}`);
    mkdirSync(fresh, { mode: 0o700 });
    const fd = openSync(fresh, 'r');
    native.flock(fd, constants.LOCK_EX | constants.LOCK_NB);
    const dir = path.join(base, token);
    renameSync(fresh, dir);
    return new BuildRunDir(token, dir, fd);
  }

  /** The prefix of this build's temp names in the store's tmp directory. */
  get tmpPrefix(): string {
    return `build-${this.token}-`;
  }

  /** Removes the directory (its containers are removed already) and drops the lock. */
  release(): void {
    if (this.fd === undefined) return;
    rmSync(this.dir, { recursive: true, force: true });
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Whether the build that owns `dir` is gone: its lock can be taken (returned held), or the directory is gone. */
function lockIfDead(dir: string): number | 'gone' | undefined {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (e) {
    if (isCode(e, 'ENOENT')) return 'gone';
    throw e;
  }
  if (native.flock(fd, constants.LOCK_EX | constants.LOCK_NB)) return fd;
  closeSync(fd);
  return undefined;
}

/**
 * Removes what killed builds left: their run directories under `base` with their containers'
 * cgroups, and their temp files in `storeTmp`. Returns the paths removed.
 */
export async function sweepBuildRunDirs(base: string, storeTmp?: string): Promise<string[]> {
  const removed: string[] = [];
  const names = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch (e) {
      if (isCode(e, 'ENOENT')) return [];
      throw e;
    }
  };
  const dead = new Map<string, number | 'gone'>();
  const verdict = (token: string) => {
    if (!dead.has(token)) {
      const v = lockIfDead(path.join(base, token));
      if (v !== undefined) dead.set(token, v);
      else return false;
    }
    return true;
  };
  if (storeTmp) {
    for (const n of names(storeTmp)) {
      const m = /^build-([0-9a-f]{16})-/.exec(n);
      if (!m || !verdict(m[1]!)) continue;
      rmSync(path.join(storeTmp, n), { recursive: true, force: true });
      removed.push(path.join(storeTmp, n));
    }
  }
  for (const n of names(base)) if (TOKEN.test(n)) verdict(n);
  for (const [token, fd] of dead) {
    if (fd === 'gone') continue;
    const dir = path.join(base, token);
    try {
      for (const id of names(dir).filter((c) => /^[0-9a-f]{64}$/.test(c))) {
        try {
          await (await Cgroup.open(id)).remove({ force: true });
        } catch (e) {
          // no cgroup by that name (never made, or removed before the kill): nothing to do
          if (!(e instanceof NotFoundError) && !isCode(e, 'ENOENT')) reportCleanupError(`cgroup of build container ${id.slice(0, 12)}`)(e);
        }
      }
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } finally {
      closeSync(fd);
    }
  }
  return removed;
}
