/**
 * nsbox exec [-i] [-t] [-d] [--privileged] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND [ARG...]: a
 * process in a running container's namespaces and cgroup, with its user and security (--privileged:
 * every capability, no seccomp); the exit code is its own. bin/nsbox.js runs quick/exec.ts first,
 * which does a plain exec (no flag but -i) without the engine; this is where it falls back to.
 */
import { readFileSync } from 'node:fs';
import { ValidationError } from '../../errors.js';
import { flag, parseArgs, value, values } from '../args.js';
import { EXEC_FLAGS } from '../exec-flags.js';
import { processSession } from '../sessions.js';
import { runSession } from '../terminal-session.js';
import { openEngine } from '../open-engine.js';

export default async function exec(argv: string[]): Promise<number> {
  const p = parseArgs(argv, EXEC_FLAGS);
  const [ref, ...command] = p.positional;
  if (!ref || command.length === 0) throw new ValidationError('"nsbox exec" requires at least 2 arguments.', 'container');
  const env = [
    ...values(p, 'env-file').flatMap((f) => readFileSync(f, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))),
    ...values(p, 'env'),
  ].map((e) => (e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`));
  const tty = flag(p, 'tty') && !flag(p, 'detach');
  const engine = await openEngine();
  const proc = await engine.exec(ref, command, {
    env,
    ...(value(p, 'workdir') ? { cwd: value(p, 'workdir')! } : {}),
    ...(value(p, 'user') ? { user: value(p, 'user')! } : {}),
    tty: tty ? { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 } : false,
    detach: flag(p, 'detach'),
    privileged: flag(p, 'privileged'),
  });
  if (flag(p, 'detach')) return 0;
  if (!flag(p, 'interactive') && !tty) proc.stdin?.end();
  return runSession(processSession(proc), { tty, interactive: flag(p, 'interactive') });
}
