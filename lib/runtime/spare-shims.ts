/**
 * Spare shims: one `nsbox-shim --spare` kept started ahead of its container by a long-lived
 * process (the API server), so that a start does not wait for the shim's exec and loading (a
 * posix_spawn on the thread pool, then the dynamic loader: 3–8 ms of every start here). The spare
 * is the same program as a shim spawned at the start, in the same session of its own
 * (`--spawned`), with the same environment (this process's, when the spare was spawned): it waits
 * on its stdin, and a start gives it its bundle directory and plan there (startDetached), after
 * which it is that container's shim like any other. Its successor is spawned once the start has
 * its report (`refill`), off the start's path.
 *
 * An idle spare is this process's child, reaped by an unref'd pidfd watch. `close` ends it (its
 * stdin closed: it exits at once, with no report), and so does this process's death (the kernel
 * closes its stdin): nothing is left behind.
 */
import { closeSync } from 'node:fs';
import { native } from '../native.js';

export interface SpareShim {
  pid: number;
  pidfd: number;
  /** The write end of its stdin: its bundle directory (one line), then its plan, then EOF. */
  stdin: number;
  stdout: number;
  stderr: number;
  /** The shim program it runs. */
  file: string;
}

export class SpareShims {
  readonly #file: () => string;
  #idle: SpareShim | undefined;
  #spawning: Promise<void> | undefined;
  /** Spares ending after close (their exits awaited by close). */
  readonly #ending = new Set<Promise<void>>();
  #closed = false;

  /** `file`: the shim program (shimPath), asked at each spawn. */
  constructor(file: () => string) {
    this.#file = file;
  }

  /** The idle spare's pid (undefined while none is ready). */
  get idlePid(): number | undefined {
    return this.#idle?.pid;
  }

  /** Resolves once the spare being spawned (if any) is ready, or failed to start. */
  async ready(): Promise<void> {
    await this.#spawning;
  }

  /** The idle spare running `file`, for a start (never waits: undefined when none is ready). */
  take(file: string): SpareShim | undefined {
    const s = this.#idle;
    if (!s || s.file !== file) return undefined;
    this.#idle = undefined;
    // Its exit is the start's to watch from here.
    native.unwatchExit(s.pidfd);
    return s;
  }

  /** Spawns a spare unless one is idle or on its way (errors are dropped: a start spawns its own shim then). */
  refill(): void {
    if (this.#closed || this.#idle || this.#spawning) return;
    this.#spawning = this.#spawn().finally(() => (this.#spawning = undefined));
  }

  async #spawn(): Promise<void> {
    const file = this.#file();
    const envp = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    let child: Awaited<ReturnType<typeof native.spawnProcess>>;
    try {
      child = await native.spawnProcess(file, [file, '--spare', '--plan-stdin', '--spawned'], envp, undefined, [], { setsid: true, stdinPipe: true });
    } catch {
      // No spare this time (the shim missing, fds or memory short): the next start spawns its own
      // shim as without spares, and reports its failure if there is one.
      return;
    }
    const s: SpareShim = { pid: child.pid, pidfd: child.pidfd, stdin: child.stdin!, stdout: child.stdout, stderr: child.stderr, file };
    let exited: () => void = () => undefined;
    const gone = new Promise<void>((resolve) => (exited = resolve));
    const onExit = () => {
      if (this.#idle === s) this.#idle = undefined;
      release(s);
      exited();
    };
    // Reaped whenever it ends while idle (killed by someone); not keeping the event loop alive.
    native.watchExit(s.pidfd, onExit, { unref: true });
    this.#ends.set(s, { gone, onExit });
    if (this.#closed) return this.#end(s);
    this.#idle = s;
  }

  readonly #ends = new WeakMap<SpareShim, { gone: Promise<void>; onExit: () => void }>();

  #end(s: SpareShim): void {
    const { gone, onExit } = this.#ends.get(s)!;
    // Waited for from here: watched again, keeping the event loop alive until it has exited.
    if (native.unwatchExit(s.pidfd)) native.watchExit(s.pidfd, onExit);
    // EOF before a bundle line: the spare exits 0 at once, without a report.
    closeSync(s.stdin);
    s.stdin = -1;
    this.#ending.add(gone);
    void gone.then(() => this.#ending.delete(gone));
  }

  /** Ends the idle spare (and one being spawned) and resolves once it has exited. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#spawning;
    const s = this.#idle;
    this.#idle = undefined;
    if (s) this.#end(s);
    await Promise.all([...this.#ending]);
  }
}

/** Closes what this process holds of a spare that is gone unused. */
function release(s: SpareShim): void {
  for (const fd of [s.stdin, s.stdout, s.stderr, s.pidfd]) {
    if (fd >= 0) closeSync(fd);
  }
}
