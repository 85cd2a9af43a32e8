/** Sessions (terminal-session.ts) over a shim's attach socket and over an exec'd process. */
import { exitCodeOf, type Engine } from '../engine/index.js';
import { InvalidStateError, NotFoundError } from '../errors.js';
import type { ForegroundRun } from '../engine/foreground.js';
import type { AttachConnection, ShimExit } from '../runtime/shim.js';
import type { ContainerProcess } from '../runtime/process.js';
import type { Session } from './terminal-session.js';

/** The container's run through its shim: ends at its exit frame (or, if the shim goes first, its record's exit). */
export function shimSession(engine: Engine, id: string, conn: AttachConnection): Session {
  const exited = new Promise<number>((resolve) => {
    let done = false;
    conn.once('exit', (e: ShimExit) => {
      done = true;
      conn.close();
      resolve(exitCodeOf(e));
    });
    conn.once('close', () => {
      if (!done) void engine.wait(id).then((w) => resolve(w.exitCode), () => resolve(125));
    });
  });
  return {
    stdout: conn.stdout,
    stderr: conn.stderr,
    write: (d) => conn.write(d),
    closeStdin: () => conn.closeStdin(),
    resize: (c, r) => conn.resize(c, r),
    signal: (sig) =>
      void engine.kill(id, sig).catch((err: unknown) => {
        // Forwarding a signal to a container that has just ended (or been removed) is no error.
        if (err instanceof InvalidStateError || err instanceof NotFoundError) return;
        process.stderr.write(`nsbox: forwarding ${sig} to ${id.slice(0, 12)}: ${(err as Error).message}\n`);
      }),
    exited,
  };
}

/** A container run in this process's foreground (Engine.startInForeground): signals go to its init. */
export function foregroundSession(run: ForegroundRun): Session {
  return {
    stdout: run.stdout,
    stderr: run.stderr,
    write: () => {},
    closeStdin: () => {},
    resize: () => {},
    signal: (sig) => run.kill(sig),
    exited: run.exited.then(exitCodeOf),
  };
}

export function processSession(proc: ContainerProcess): Session {
  return {
    stdout: proc.stdout,
    stderr: proc.stderr,
    write: (d) => proc.stdin?.write(d),
    closeStdin: () => proc.stdin?.end(),
    resize: (c, r) => proc.resize(c, r),
    signal: (sig) => {
      try {
        // a process that is gone already is no error of kill (it answers false)
        proc.kill(sig);
      } catch (err) {
        process.stderr.write(`nsbox: forwarding ${sig}: ${(err as Error).message}\n`);
      }
    },
    exited: proc.wait().then(exitCodeOf),
  };
}
