/**
 * nsbox rollback [--to DIGEST | -N] [--push] NAME[:TAG]: moves the tag back to an image its journal
 * lists (`nsbox image log`); default -1, the image it pointed to before. `--push` moves it on the
 * registry too. Containers keep running the image they were made from.
 */
import { ValidationError } from '../../errors.js';
import { parseReference } from '../../image/reference.js';
import { flag, parseArgs, value } from '../args.js';
import { openEngine } from '../open-engine.js';
import { pushPrinter } from './push.js';

export default async function rollback(argv: string[]): Promise<number> {
  // `-2` is a count back, not a flag
  const steps = argv.filter((a) => /^-\d+$/.test(a));
  const p = parseArgs(argv.filter((a) => !/^-\d+$/.test(a)), [{ names: ['to'], kind: 'value' }, { names: ['push'], kind: 'bool' }, { names: ['quiet', 'q'], kind: 'bool' }], { stopAtPositional: false });
  if (p.positional.length !== 1) throw new ValidationError('"nsbox rollback" requires exactly 1 argument.', 'image');
  if (steps.length > 1 || (steps.length && value(p, 'to') !== undefined)) throw new ValidationError('rollback takes one of --to DIGEST and -N', 'to');
  const ref = p.positional[0]!;
  const to = value(p, 'to') ?? (steps[0] ? Number(steps[0]) : -1);
  const quiet = flag(p, 'quiet');
  const printer = pushPrinter(process.stdout);
  const engine = await openEngine();
  const r = await engine.images.rollback(ref, { to, ...(flag(p, 'push') ? { push: quiet ? {} : { onProgress: printer.onProgress } } : {}) });
  const name = parseReference(ref).familiar;
  process.stdout.write(`${name}: ${r.from ?? '<none>'} -> ${r.to}\n`);
  if (r.pushed) process.stdout.write(`${r.pushed.tag}: digest: ${r.pushed.digest} size: ${r.pushed.size}\n`);
  return 0;
}
