/** nsbox stop [-t SECONDS] CONTAINER [...]: the stop signal, then SIGKILL after the timeout (10 s). */
import { ContainerStore } from '../../engine/index.js';
import { ValidationError } from '../../errors.js';
import { parseArgs, value } from '../args.js';
import { bundleOf, stopShim } from '../detached.js';

export default async function stop(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['time', 't'], kind: 'value' }, { names: ['signal', 's'], kind: 'value' }], { stopAtPositional: false });
  if (p.positional.length === 0) throw new ValidationError('"nsbox stop" requires at least 1 argument.', 'container');
  const store = await ContainerStore.open();
  let failed = 0;
  for (const ref of p.positional) {
    try {
      const r = await store.get(ref);
      const bundle = bundleOf(r);
      if (r.state === 'running' && bundle) await stopShim(bundle, Number(value(p, 'time') ?? 10));
      else if (r.state === 'running') throw new ValidationError(`container ${ref} runs in the foreground of another nsbox: stop it there`, 'container');
      process.stdout.write(`${ref}\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`Error response from nsbox: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
