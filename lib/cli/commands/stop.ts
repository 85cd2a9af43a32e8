/** nsbox stop [-t SECONDS] CONTAINER [...]: the stop signal, then SIGKILL after the timeout (10 s). */
import { ValidationError } from '../../errors.js';
import { parseArgs, value } from '../args.js';
import { bundleOf, stopShim } from '../detached.js';
import { eachContainer } from '../each-container.js';

export default async function stop(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['time', 't'], kind: 'value' }, { names: ['signal', 's'], kind: 'value' }], { stopAtPositional: false });
  const timeout = Number(value(p, 'time') ?? 10);
  return eachContainer('stop', p.positional, async (r, _store, ref) => {
    const bundle = bundleOf(r);
    if (r.state === 'running' && bundle) await stopShim(bundle, timeout);
    else if (r.state === 'running') throw new ValidationError(`container ${ref} runs in the foreground of another nsbox: stop it there`, 'container');
  });
}
