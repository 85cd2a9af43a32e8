/** nsbox tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]: the source by name, id or unique id prefix, as docker's. */
import { ValidationError } from '../../errors.js';
import { parseArgs } from '../args.js';
import { openEngine } from '../open-engine.js';

export default async function tag(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { stopAtPositional: false });
  if (p.positional.length !== 2) throw new ValidationError('"nsbox tag" requires exactly 2 arguments.', 'image');
  const engine = await openEngine();
  await engine.images.tag(p.positional[0]!, p.positional[1]!);
  return 0;
}
