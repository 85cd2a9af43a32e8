/**
 * Who removes a `--rm` container when it exits. docker's daemon does it itself; here the process
 * attached to the container (`nsbox serve`, a foreground `nsbox run --rm`) does, the moment its
 * watch sees the exit, and the shim's exit command (a whole `nsbox rm` process) only when nobody
 * is: such a process holds a shared flock on the container's directory for as long as it is
 * there, and the exit command runs under `flock -n` on that directory, so it does nothing while
 * the lock is held. A process that dies drops its lock, and the exit command takes over.
 */
import { closeSync, existsSync, openSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { constants, native } from '../native.js';
import { packagePath } from '../package-root.js';
import { isCode } from '../storage/errors.js';
import { flockWhenFree } from '../storage/lock-wait.js';

const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((f) => existsSync(f));

/**
 * In the container's directory: held (LOCK_SH) by each process that restarts the container, from
 * before its stop until its new run is recorded, so that the process that would remove the
 * container at that stop's exit (another one's claim: a CLI's restart of `nsbox serve`'s --rm
 * container) holds off. A process that dies lets go of it.
 */
const RESTART_LOCK = 'restart.lock';

export class RemovalClaims {
  readonly #fds = new Map<string, number>();
  /** Containers this process is restarting: the removal their stop would set off is not theirs to do. */
  readonly #restarting = new Set<string>();
  /** The restart.lock fds held by this process's restarts going on, per container. */
  readonly #restartFds = new Map<string, number[]>();
  /** The run (its startedAt) of each container this process started and removes when it is done. */
  readonly #runs = new Map<string, string>();

  /** Takes the removal of the container whose directory is `dir`; false when the exit command is at it. */
  claim(id: string, dir: string): boolean {
    if (this.#fds.has(id)) return true;
    let fd: number;
    try {
      fd = openSync(dir, 'r');
    } catch (e) {
      if (isCode(e, 'ENOENT')) return false;
      throw e;
    }
    if (!native.flock(fd, constants.LOCK_SH | constants.LOCK_NB)) {
      closeSync(fd);
      return false;
    }
    this.#fds.set(id, fd);
    return true;
  }

  has(id: string): boolean {
    return this.#fds.has(id);
  }

  /**
   * docker's restart keeps a --rm container: from here until endRestart, its stop removes nothing,
   * in this process or any other (restart.lock in its directory `dir`).
   */
  async beginRestart(id: string, dir: string): Promise<void> {
    this.#restarting.add(id);
    let fd: number;
    try {
      fd = openSync(join(dir, RESTART_LOCK), fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    } catch (e) {
      // Removed already: the restart fails on its own (no such container).
      if (isCode(e, 'ENOENT')) return;
      throw e;
    }
    this.#restartFds.set(id, [...(this.#restartFds.get(id) ?? []), fd]);
    // Shared among restarters; only a removal's momentary check (restartedElsewhere) excludes it.
    await flockWhenFree(fd, join(dir, RESTART_LOCK), constants.LOCK_SH | constants.LOCK_NB, { deadline: Date.now() + 5000 });
  }

  endRestart(id: string): void {
    this.#restarting.delete(id);
    const fds = this.#restartFds.get(id) ?? [];
    const fd = fds.pop();
    if (!fds.length) this.#restartFds.delete(id);
    if (fd !== undefined) closeSync(fd);
  }

  /**
   * Whether a restart of the container (directory `dir`) has begun in another process since it
   * was started here: one going on (its restart.lock held), or one done (the file there, and a run
   * recorded since: `laterRun`, asked only then). Its new run is then that process's, and its
   * removal the exit command's.
   */
  async restartedElsewhere(dir: string, laterRun: () => Promise<boolean>): Promise<boolean> {
    let fd: number;
    try {
      fd = openSync(join(dir, RESTART_LOCK), fsc.O_RDONLY | fsc.O_NOFOLLOW);
    } catch (e) {
      // never restarted (or removed already)
      if (isCode(e, 'ENOENT')) return false;
      throw e;
    }
    try {
      if (!native.flock(fd, constants.LOCK_EX | constants.LOCK_NB)) return true;
    } finally {
      // closing lets go of the exclusive lock taken as a test
      closeSync(fd);
    }
    return laterRun();
  }

  /** The run started at `startedAt` is the container's current one here (set by its start). */
  setRun(id: string, startedAt: string): void {
    this.#runs.set(id, startedAt);
  }

  /**
   * Whether the removal that the end of run `startedAt` sets off is still to be done: not while the
   * container is being restarted, nor once a later run of it has started.
   */
  removes(id: string, startedAt: string | undefined): boolean {
    if (this.#restarting.has(id)) return false;
    const current = this.#runs.get(id);
    return startedAt === undefined || current === undefined || current === startedAt;
  }

  /** Gives the removal back (to the exit command). */
  release(id: string): void {
    const fd = this.#fds.get(id);
    if (fd === undefined) return;
    this.#fds.delete(id);
    this.#runs.delete(id);
    closeSync(fd);
  }

  releaseAll(): void {
    for (const id of [...this.#fds.keys()]) this.release(id);
  }
}

/**
 * The shim's exit command for a --rm container: `nsbox rm --auto-remove ID --run STARTED_AT`
 * (Engine.autoRemove: nothing if a later run has started since, as a restart does), under `flock
 * -n` on the container's directory when flock(1) is there (see above), as the process that started it.
 */
export function autoRemoveCommand(root: string, id: string, dir: string, startedAt: string): string[] {
  const rm = ['/usr/bin/env', `NSBOX_ROOT=${root}`, process.execPath, packagePath('bin', 'nsbox.js'), 'rm', '--auto-remove', id, '--run', startedAt];
  // -E 0: the lock is held, someone else removes it. `dir/.`: flock(1) creates a lock file that is
  // missing, and must not make one in place of a directory already removed; `dir/.` fails to open then.
  return FLOCK ? [FLOCK, '-n', '-E', '0', `${dir}/.`, ...rm] : rm;
}
