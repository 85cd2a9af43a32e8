/** nsbox save -o FILE [--format docker|oci] IMAGE */
import { openEngine } from '../open-engine.js';
import { ValidationError } from '../../errors.js';
import { parseArgs, value } from '../args.js';

export default async function save(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['output', 'o'], kind: 'value' }, { names: ['format'], kind: 'value' }], { stopAtPositional: false });
  const out = value(p, 'output');
  if (!out) throw new ValidationError('nsbox save needs -o FILE (it does not write a tar to the terminal)', 'output');
  if (p.positional.length !== 1) throw new ValidationError('"nsbox save" takes exactly one image here', 'image');
  const format = value(p, 'format') ?? 'docker';
  if (format !== 'docker' && format !== 'oci') throw new ValidationError(`unknown --format ${format}: docker or oci`, 'format');
  await (await openEngine()).images.save(p.positional[0]!, out, { format });
  return 0;
}
