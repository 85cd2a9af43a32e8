/** nsbox commit [-a AUTHOR] [-m MESSAGE] [-c CHANGE]... [-p|--pause=false] CONTAINER [REPO[:TAG]]: prints the new image's id, as docker's. */
import { ValidationError } from '../../errors.js';
import { parseArgs, value, values } from '../args.js';
import { openEngine } from '../open-engine.js';

export default async function commit(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['author', 'a'], kind: 'value' },
    { names: ['message', 'm'], kind: 'value' },
    { names: ['change', 'c'], kind: 'list' },
    { names: ['pause', 'p'], kind: 'value' },
  ], { stopAtPositional: false });
  if (p.positional.length < 1 || p.positional.length > 2) throw new ValidationError('"nsbox commit" requires at least 1 and at most 2 arguments.', 'container');
  const pause = value(p, 'pause');
  if (pause !== undefined && !['true', 'false', '1', '0'].includes(pause)) throw new ValidationError(`invalid --pause value ${JSON.stringify(pause)}: true or false`, 'pause');
  const author = value(p, 'author');
  const comment = value(p, 'message');
  const image = await (await openEngine()).commit(p.positional[0]!, {
    ...(p.positional[1] ? { reference: p.positional[1] } : {}),
    ...(author ? { author } : {}),
    ...(comment ? { comment } : {}),
    changes: values(p, 'change'),
    pause: pause === undefined || pause === 'true' || pause === '1',
  });
  process.stdout.write(`${image.id}\n`);
  return 0;
}
