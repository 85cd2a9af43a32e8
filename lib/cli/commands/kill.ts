/** nsbox kill [-s SIGNAL] CONTAINER [...] (default SIGKILL). */
import { ContainerStore } from '../../engine/index.js';
import { InvalidStateError, ValidationError } from '../../errors.js';
import { signalNumber } from '../../runtime/signals.js';
import { parseArgs, value } from '../args.js';
import { bundleOf, containerPid } from '../detached.js';

export default async function kill(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['signal', 's'], kind: 'value' }], { stopAtPositional: false });
  if (p.positional.length === 0) throw new ValidationError('"nsbox kill" requires at least 1 argument.', 'container');
  const sig = signalNumber(value(p, 'signal') ?? 'SIGKILL');
  const store = await ContainerStore.open();
  let failed = 0;
  for (const ref of p.positional) {
    try {
      const r = await store.get(ref);
      const bundle = bundleOf(r);
      const pid = bundle ? containerPid(bundle) : r.supervisor?.pid;
      if (r.state !== 'running' || !pid) throw new InvalidStateError(`Cannot kill container: ${ref}: container is not running`);
      process.kill(pid, sig);
      process.stdout.write(`${ref}\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`Error response from nsbox: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
