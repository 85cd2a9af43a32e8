/**
 * The quick commands' plain fd plumbing (no streams, no zod): a container process's stdout and
 * stderr (ours, or pipes relayed to ours for a terminal), copying such a pipe to ours, writing all
 * of a buffer, closing what is dropped, whether an fd is a terminal; and our signals, forwarded to
 * the process a quick command starts.
 */
import { closeSync, fstatSync, read, writeSync } from 'node:fs';
import { native } from '../../native.js';

export function closeAll(fds: number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // EBADF: closed already; nothing else is left to do with an fd being dropped
    }
  }
}

/** Writes all of `data` to `fd`; when our reader went away (EPIPE), `onEpipe` says what follows. */
export function writeAll(fd: number, data: Buffer, onEpipe: () => void): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') {
        onEpipe();
        return;
      }
      // A non-blocking fd we were given: wait until it takes more (rare; a terminal or pipe is blocking).
      if (code !== 'EAGAIN') throw e;
    }
  }
}

/** Copies `from` to `to` until `from` ends, then closes `close`. */
export function relay(from: number, to: number, close: number, onEpipe: () => void): Promise<void> {
  const buf = Buffer.allocUnsafe(64 * 1024);
  return new Promise((resolve) => {
    const next = (): void =>
      read(from, buf, 0, buf.length, null, (err, n) => {
        if (err || n === 0) {
          closeAll([close]);
          resolve();
          return;
        }
        writeAll(to, buf.subarray(0, n), onEpipe);
        next();
      });
    next();
  });
}

/** A signal's number, with node:os loaded on the first signal forwarded rather than at every quick command's start (~0.4 ms). */
const signalNumber = (sig: NodeJS.Signals): number => process.getBuiltinModule('node:os').constants.signals[sig];

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/**
 * Our SIGINT, SIGTERM, SIGHUP and SIGQUIT, for a process about to be started: taken from now on, so
 * that none ends us before it runs (one that comes first is kept for it, as one that comes while a
 * `spawnSync` blocks them). `to(pidfd)` once it runs sends them to it; `exited()` once it is gone
 * (its pidfd closed) stops that; `giveUp()` when nothing started (the full command takes over) lets
 * them go and raises again the first that came meanwhile.
 */
export function takeSignals(): { to(pidfd: number): void; exited(): void; giveUp(): undefined } {
  let target: number | undefined;
  let running = true;
  const pending: NodeJS.Signals[] = [];
  const forward = (sig: NodeJS.Signals) => {
    if (target === undefined) pending.push(sig);
    else if (running) native.sendSignal(target, signalNumber(sig));
  };
  for (const sig of FORWARDED) process.on(sig, forward);
  return {
    to(pidfd) {
      target = pidfd;
      for (const sig of pending.splice(0)) forward(sig);
    },
    exited() {
      running = false;
    },
    giveUp() {
      for (const sig of FORWARDED) process.off(sig, forward);
      if (pending.length) process.kill(process.pid, pending[0]!);
      return undefined;
    },
  };
}

/**
 * isatty(3) without node:tty, which loads node:net and streams (~6 ms): what is not a character
 * device (a pipe, a file) or is one of the memory devices (/dev/null: major 1) is no terminal; any
 * other character device is asked of node:tty.
 */
export function isatty(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    if (!st.isCharacterDevice() || Math.floor(st.rdev / 256) % 4096 === 1) return false;
  } catch {
    // a closed fd is no terminal
    return false;
  }
  return process.getBuiltinModule('node:tty').isatty(fd);
}

/**
 * A container process's stdout and stderr: ours as they are, or, for a terminal (without -t,
 * docker's container never gets one), a pipe's write end whose read end is relayed to ours. Sets
 * `stdio[1]` and `stdio[2]`, adds the write ends to `given` (ours to close once the process has
 * them) and returns each read end with the fd it is relayed to.
 */
export function outputFds(stdio: [number, number, number], given: number[]): Array<[number, number]> {
  const relayed: Array<[number, number]> = [];
  for (const i of [1, 2] as const) {
    if (!isatty(i)) continue;
    const [r, w] = native.pipe();
    relayed.push([r, i]);
    given.push(w);
    stdio[i] = w;
  }
  return relayed;
}
