/** nsbox kill [-s SIGNAL] CONTAINER [...] (default SIGKILL). */
import { parseArgs, value } from '../args.js';
import { eachContainer } from '../each-container.js';

export default async function kill(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['signal', 's'], kind: 'value' }], { stopAtPositional: false });
  const signal = value(p, 'signal') ?? 'SIGKILL';
  return eachContainer('kill', p.positional, (engine, ref) => engine.kill(ref, signal));
}
