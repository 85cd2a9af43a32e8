/** nsbox pause CONTAINER [...]: freezes every process of each (the cgroup freezer). */
import { parseArgs } from '../args.js';
import { eachContainer } from '../each-container.js';

export default async function pause(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { stopAtPositional: false });
  return eachContainer('pause', p.positional, (engine, ref) => engine.pause(ref));
}
