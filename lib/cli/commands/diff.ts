/** nsbox diff CONTAINER: what the container added (A), changed (C) and deleted (D), as docker's. */
import { ValidationError } from '../../errors.js';
import { parseArgs } from '../args.js';
import { openEngine } from '../open-engine.js';

export default async function diff(argv: string[]): Promise<number> {
  const p = parseArgs(argv, []);
  if (p.positional.length !== 1) throw new ValidationError('"nsbox diff" requires exactly 1 argument.', 'container');
  const changes = await (await openEngine()).changes(p.positional[0]!);
  process.stdout.write(changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
  return 0;
}
