/**
 * nsbox import [-c CHANGE]... [-m MESSAGE] [--platform P] file|URL|- [REPOSITORY[:TAG]]: a root
 * filesystem tar (plain or gzipped) as a one-layer image; prints its id, as docker does.
 */
import { importImage } from '../../build/index.js';
import { ValidationError } from '../../errors.js';
import { parseArgs, value, values } from '../args.js';

export default async function importCommand(argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    [
      { names: ['change', 'c'], kind: 'list' },
      { names: ['message', 'm'], kind: 'value' },
      { names: ['platform'], kind: 'value' },
    ],
    { stopAtPositional: false },
  );
  const [source, name, ...extra] = p.positional;
  if (!source || extra.length) throw new ValidationError('"nsbox import" requires 1 or 2 arguments: file|URL|- [REPOSITORY[:TAG]]', 'source');
  const message = value(p, 'message');
  const platform = value(p, 'platform');
  const image = await importImage(source === '-' ? process.stdin : source, {
    ...(name ? { name } : {}),
    changes: values(p, 'change'),
    ...(message !== undefined ? { message } : {}),
    ...(platform ? { platform } : {}),
  });
  process.stdout.write(`${image.id}\n`);
  return 0;
}
