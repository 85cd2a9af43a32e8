/** nsbox rmi [-f] [--forget] IMAGE [IMAGE...]: `--forget` also removes an earlier version a tag's journal keeps for rollback. */
import { ValidationError } from '../../errors.js';
import { flag, parseArgs } from '../args.js';
import { openEngine } from '../open-engine.js';

export default async function rmi(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['force', 'f'], kind: 'bool' }, { names: ['no-prune'], kind: 'bool' }, { names: ['forget'], kind: 'bool' }], { stopAtPositional: false });
  if (p.positional.length === 0) throw new ValidationError('"nsbox rmi" requires at least 1 argument.', 'image');
  const engine = await openEngine();
  let failed = 0;
  for (const ref of p.positional) {
    try {
      const { untagged, deleted } = await engine.removeImage(ref, { force: flag(p, 'force'), forget: flag(p, 'forget') });
      for (const u of untagged) process.stdout.write(`Untagged: ${u}\n`);
      for (const d of deleted) process.stdout.write(`Deleted: ${d}\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`Error response from nsbox: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
