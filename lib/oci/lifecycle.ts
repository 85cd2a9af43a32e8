/** `start`, `kill`, `delete`, `pause`, `resume`: each checks the status first, as runc does. */
import { closeSync, openSync, rmSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidStateError, NotFoundError } from '../errors.js';
import { native } from '../native.js';
import { openCgroup } from './cgroup.js';
import { runHooks } from './hooks.js';
import { FIFO, initAlive, loadState, stateDir, type StateFile } from './state.js';
import { ociState, statusOf, waitGone, watchGone } from './status.js';

const O_RDWR_NONBLOCK = 0o2 | 0o4000;

/**
 * Releases the init from its fifo; fails fast (not hanging on the fifo) when the init has died.
 * `initGone`: the caller's own watch of its child init (`run`), used instead of a watch here,
 * which would reap the child and take its exit status from the caller.
 */
export async function startContainer(root: string, id: string, initGone?: Promise<unknown>): Promise<void> {
  const s = loadState(root, id);
  const status = await statusOf(root, s);
  if (status === 'stopped') throw new InvalidStateError('cannot start a container that has stopped');
  if (status !== 'created') throw new InvalidStateError(`cannot start an already running container`);
  const fifo = join(stateDir(root, id), FIFO);
  await runHooks(s.config, 'startContainer', ociState(s, 'created'));
  // The open blocks until the init opens its end; if the init dies first, our own writer
  // (O_RDWR never blocks) lets the open return, and the read finds no init's byte.
  const watch = initGone ? { gone: initGone, stop: () => undefined } : watchGone(s);
  void watch.gone.then(() => {
    try {
      closeSync(openSync(fifo, O_RDWR_NONBLOCK));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // ENOENT: a concurrent start took it
    }
  });
  const fh = await open(fifo, 'r');
  try {
    const buf = Buffer.alloc(1);
    const { bytesRead } = await fh.read(buf, 0, 1, null);
    if (bytesRead !== 1) throw new InvalidStateError('cannot start a container that has stopped');
  } finally {
    watch.stop();
    await fh.close();
  }
  unlinkSync(fifo);
  await runHooks(s.config, 'poststart', ociState(s, 'running'));
}

/** Sends a signal to the init, or with `all` to every process of the container's cgroup. */
export async function killContainer(root: string, id: string, signo: number, all: boolean): Promise<void> {
  const s = loadState(root, id);
  const status = await statusOf(root, s);
  if (status === 'stopped' && !all) throw new InvalidStateError('container not running');
  if (all) {
    const cg = await openCgroup(s.cgroupPaths);
    const pids = cg ? await cg.procs().catch((e: unknown) => (e instanceof NotFoundError ? [] : Promise.reject(e))) : [];
    for (const pid of pids) {
      try {
        process.kill(pid, signo);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // ESRCH: gone meanwhile
      }
    }
    // A frozen process only sees SIGKILL once thawed (runc's kill --all of a paused container).
    if (signo === 9 && cg && status === 'paused') await cg.thaw();
    if (status === 'stopped' && pids.length === 0) throw new InvalidStateError('container not running');
    return;
  }
  const pidfd = native.pidfdOpen(s.pid);
  try {
    if (!initAlive(s) || !native.sendSignal(pidfd, signo)) throw new InvalidStateError('container not running');
  } finally {
    closeSync(pidfd);
  }
}

/** Kills what is left (force, or a created container), removes the cgroup, runs poststop, removes the state. */
export async function deleteContainer(root: string, id: string, force: boolean): Promise<void> {
  let s: StateFile;
  try {
    s = loadState(root, id);
  } catch (e) {
    // runc: a forced delete of a container that is not there succeeds (containerd's cleanup path).
    if (e instanceof NotFoundError && force) {
      rmSync(stateDir(root, id), { recursive: true, force: true });
      return;
    }
    throw e;
  }
  const status = await statusOf(root, s);
  if ((status === 'running' || status === 'paused') && !force) throw new InvalidStateError(`cannot delete container ${id} that is not stopped: ${status}`);
  const cg = await openCgroup(s.cgroupPaths);
  if (status !== 'stopped') {
    const gone = waitGone(s);
    if (cg) await cg.kill();
    else process.kill(s.pid, 'SIGKILL');
    await gone;
  } else if (cg && (await cg.exists())) {
    // The init is gone; a process it left (a container sharing the host's pid namespace) is not kept.
    const left = await cg.procs();
    if (left.length) await cg.kill();
  }
  if (cg) await cg.remove();
  rmSync(stateDir(root, id), { recursive: true, force: true });
  await runHooks(s.config, 'poststop', ociState(s, 'stopped'));
}

export async function pauseContainer(root: string, id: string, pause: boolean): Promise<void> {
  const s = loadState(root, id);
  const status = await statusOf(root, s);
  const cg = await openCgroup(s.cgroupPaths);
  if (!cg) throw new InvalidStateError(`container ${id} has no cgroup to freeze`);
  if (pause) {
    if (status !== 'running' && status !== 'created') throw new InvalidStateError('container not running');
    await cg.freeze();
  } else {
    if (status !== 'paused') throw new InvalidStateError('container not paused');
    await cg.thaw();
  }
}
