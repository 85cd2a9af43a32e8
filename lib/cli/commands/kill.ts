/** nsbox kill [-s SIGNAL] CONTAINER [...] (default SIGKILL). */
import { InvalidStateError } from '../../errors.js';
import { signalNumber } from '../../runtime/signals.js';
import { parseArgs, value } from '../args.js';
import { bundleOf, containerPid } from '../detached.js';
import { eachContainer } from '../each-container.js';

export default async function kill(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['signal', 's'], kind: 'value' }], { stopAtPositional: false });
  const sig = signalNumber(value(p, 'signal') ?? 'SIGKILL');
  return eachContainer('kill', p.positional, async (r, _store, ref) => {
    const bundle = bundleOf(r);
    const pid = bundle ? containerPid(bundle) : r.supervisor?.pid;
    if (r.state !== 'running' || !pid) throw new InvalidStateError(`Cannot kill container: ${ref}: container is not running`);
    process.kill(pid, sig);
  });
}
