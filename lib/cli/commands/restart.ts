/** nsbox restart [-t SECONDS] CONTAINER [...]: stop (if running), then start on the same writable layer. */
import { parseArgs, value } from '../args.js';
import { eachContainer } from '../each-container.js';

export default async function restart(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['time', 't', 'timeout'], kind: 'value' }], { stopAtPositional: false });
  const timeout = Number(value(p, 'time') ?? 10);
  return eachContainer('restart', p.positional, (engine, ref) => engine.restart(ref, { timeout }).then(() => {}));
}
