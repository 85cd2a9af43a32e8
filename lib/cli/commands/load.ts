/** nsbox load [-i FILE] [-q]: a docker-archive or oci-archive tar (gzip too), or stdin. */
import { openEngine } from '../open-engine.js';
import { flag, parseArgs, value } from '../args.js';

export default async function load(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['input', 'i'], kind: 'value' }, { names: ['quiet', 'q'], kind: 'bool' }]);
  const images = await (await openEngine()).images.load(value(p, 'input') ?? process.stdin);
  if (!flag(p, 'quiet')) {
    for (const i of images) {
      if (i.names.length) for (const n of i.names) process.stdout.write(`Loaded image: ${n}\n`);
      else process.stdout.write(`Loaded image ID: ${i.id}\n`);
    }
  }
  return 0;
}
