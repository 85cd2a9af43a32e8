/**
 * nsbox start [-a] [-i] CONTAINER [...]: starts created or stopped containers on their kept writable
 * layer. With -a (one container) this CLI stays attached, as `run` does, and exits with its code.
 */
import { ValidationError } from '../../errors.js';
import { flag, parseArgs } from '../args.js';
import { eachContainer, unlessAlready } from '../each-container.js';
import { shimSession } from '../sessions.js';
import { runSession } from '../terminal-session.js';
import { openEngine } from '../open-engine.js';

export default async function start(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['attach', 'a'], kind: 'bool' }, { names: ['interactive', 'i'], kind: 'bool' }], { stopAtPositional: false });
  const attach = flag(p, 'attach') || flag(p, 'interactive');
  if (!attach) return eachContainer('start', p.positional, (engine, ref) => unlessAlready(() => engine.start(ref)));
  if (p.positional.length !== 1) throw new ValidationError('you cannot start and attach multiple containers at once', 'container');
  const engine = await openEngine();
  const ref = p.positional[0]!;
  const r = await engine.get(ref);
  await engine.start(r.id, { awaitAttach: true });
  const conn = await engine.attach(r.id);
  return runSession(shimSession(engine, r.id, conn), { tty: r.options.tty !== undefined && r.options.tty !== false, interactive: flag(p, 'interactive') && r.openStdin });
}
