/**
 * The CLI's side of an attached process (run, start -a, exec): its output to ours, our stdin to it
 * with -i (raw mode with -t, so ^C and ^D reach the container's terminal as in docker), our window
 * size to its terminal, and without -t our SIGINT/SIGTERM/SIGHUP/SIGQUIT forwarded to it.
 */
import type { Readable } from 'node:stream';

export interface Session {
  stdout: Readable | null;
  stderr: Readable | null;
  write(data: Buffer): void;
  closeStdin(): void;
  resize(cols: number, rows: number): void;
  signal(sig: NodeJS.Signals): void;
  /** Resolves with the exit code once the process has ended (its output is complete by then). */
  exited: Promise<number>;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

const ended = (s: Readable | null) => new Promise<void>((r) => (!s || s.readableEnded || s.destroyed ? r() : (s.once('end', r), s.once('close', r))));

export async function runSession(s: Session, opts: { tty: boolean; interactive: boolean }): Promise<number> {
  // Only with -i: making process.stdin (an fs or net stream) costs several milliseconds.
  const stdin = opts.interactive ? process.stdin : undefined;
  const forward = (sig: NodeJS.Signals) => s.signal(sig);
  if (!opts.tty) for (const sig of SIGNALS) process.on(sig, forward);
  s.stdout?.pipe(process.stdout, { end: false });
  s.stderr?.pipe(process.stderr, { end: false });
  const onData = (d: Buffer) => s.write(d);
  const onEnd = () => s.closeStdin();
  if (stdin) {
    if (opts.tty && stdin.isTTY) stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.once('end', onEnd);
  }
  // A terminal with no size (0×0, as script(1) gives without a controlling terminal) is not sent:
  // it would replace the size the process was created with, as docker also skips it.
  const onResize = () => {
    const { columns, rows } = process.stdout;
    if (columns > 0 && rows > 0) s.resize(columns, rows);
  };
  if (opts.tty && process.stdout.isTTY) {
    process.stdout.on('resize', onResize);
    onResize();
  }
  try {
    const code = await s.exited;
    await Promise.all([ended(s.stdout), ended(s.stderr)]);
    return code;
  } finally {
    for (const sig of SIGNALS) process.off(sig, forward);
    process.stdout.off('resize', onResize);
    if (stdin) {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (opts.tty && stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      stdin.destroy();
    }
  }
}
