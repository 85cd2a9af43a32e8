/**
 * `ContainerProcess`: one running process of a container (its init, or one started by `exec`):
 * stdio streams, exit through the pidfd, signals through pidfd_send_signal.
 */
import type { Readable, Writable } from 'node:stream';
import { native } from '../native.js';
import { NsboxError } from '../errors.js';
import { closeQuietly, type PreparedStdio } from './stdio.js';
import { signalName, signalNumber, type SignalName } from './signals.js';

export interface ExitStatus {
  /** The exit code, or null when a signal ended the process. */
  exitCode: number | null;
  /** The signal's name ('SIGKILL') when a signal ended the process, else null. */
  signal: string | null;
  /** Filled in for containers with a memory limit: the kernel's OOM killer ended it. */
  oomKilled?: boolean;
}

export class ContainerProcess {
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  #pidfd: number;
  #exit: Promise<ExitStatus>;
  #status: ExitStatus | undefined;
  #ptyMaster: number | undefined;

  /** @internal Built by `Container`; takes ownership of the pidfd and the stdio streams. */
  constructor(pid: number, pidfd: number, stdio: PreparedStdio) {
    this.pid = pid;
    this.#pidfd = pidfd;
    this.stdin = stdio.stdin;
    this.stdout = stdio.stdout;
    this.stderr = stdio.stderr;
    this.#ptyMaster = stdio.ptyMaster;
    this.#exit = new Promise((resolve, reject) => {
      native.watchExit(pidfd, (info) => {
        if (info.error !== undefined) {
          reject(new NsboxError(`waitid on pid ${pid}: ${info.error}`, { code: info.error, syscall: 'waitid' }));
          return;
        }
        this.#status = info.signal !== undefined
          ? { exitCode: null, signal: signalName(info.signal) }
          : { exitCode: info.exitCode ?? 0, signal: null };
        resolve(this.#status);
      });
    });
    // Marked handled, not swallowed: wait() hands the failure to whoever asks for the exit, and
    // a process nobody waits for must not end Node with an unhandled rejection.
    this.#exit.then(undefined, () => undefined);
  }

  /** The exit status once the process has ended (and been reaped), else undefined. */
  get exitStatus(): ExitStatus | undefined {
    return this.#status;
  }

  get running(): boolean {
    return this.#status === undefined;
  }

  /** @internal The pidfd, for setns by `exec`. */
  get pidfd(): number {
    return this.#pidfd;
  }

  wait(): Promise<ExitStatus> {
    return this.#exit;
  }

  /** Sends a signal; false when the process has already exited. */
  kill(signal: SignalName | number = 'SIGTERM'): boolean {
    if (this.#status !== undefined || this.#pidfd < 0) return false;
    return native.sendSignal(this.#pidfd, signalNumber(signal));
  }

  /** Sets the terminal's window size (the process gets SIGWINCH). */
  resize(cols: number, rows: number): void {
    if (this.#ptyMaster === undefined) throw new NsboxError('resize: this process has no terminal', { code: 'ERR_NO_TTY' });
    native.resizePty(this.#ptyMaster, cols, rows);
  }

  /** @internal Releases the pidfd and the streams; the process must have exited. */
  close(): void {
    if (this.#pidfd >= 0) {
      closeQuietly(this.#pidfd);
      this.#pidfd = -1;
    }
    for (const s of [this.stdin, this.stdout, this.stderr]) s?.destroy();
  }
}
