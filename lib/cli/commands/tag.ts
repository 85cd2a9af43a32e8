/** nsbox tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG] */
import { Image } from '../../image/image.js';
import { ValidationError } from '../../errors.js';
import { parseArgs } from '../args.js';

export default async function tag(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { stopAtPositional: false });
  if (p.positional.length !== 2) throw new ValidationError('"nsbox tag" requires exactly 2 arguments.', 'image');
  const image = await Image.get(p.positional[0]!);
  await image.tag(p.positional[1]!);
  return 0;
}
