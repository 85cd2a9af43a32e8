/**
 * Who removes a `--rm` container when it exits. docker's daemon does it itself; here the process
 * attached to the container (`nsbox serve`, a foreground `nsbox run --rm`) does, the moment its
 * watch sees the exit, and the shim's exit command (a whole `nsbox rm` process) only when nobody
 * is: such a process holds a shared flock on the container's directory for as long as it is
 * there, and the exit command runs under `flock -n` on that directory, so it does nothing while
 * the lock is held. A process that dies drops its lock, and the exit command takes over.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import { constants, native } from '../native.js';
import { packagePath } from '../package-root.js';
import { isCode } from '../storage/errors.js';

const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((f) => existsSync(f));

export class RemovalClaims {
  readonly #fds = new Map<string, number>();
  /** Containers this process is restarting: the removal their stop would set off is not theirs to do. */
  readonly #restarting = new Set<string>();
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

  /** docker's restart keeps a --rm container: from here until endRestart, its stop removes nothing. */
  beginRestart(id: string): void {
    this.#restarting.add(id);
  }

  endRestart(id: string): void {
    this.#restarting.delete(id);
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
