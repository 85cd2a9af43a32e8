/** nsbox unpause CONTAINER [...] */
import { parseArgs } from '../args.js';
import { eachContainer } from '../each-container.js';

export default async function unpause(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { stopAtPositional: false });
  return eachContainer('unpause', p.positional, (engine, ref) => engine.unpause(ref));
}
