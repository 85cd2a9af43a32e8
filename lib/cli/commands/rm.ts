/** nsbox rm [-f] CONTAINER [CONTAINER...] */
import { ContainerStore, processStartTime } from '../../engine/index.js';
import { InvalidStateError, ValidationError } from '../../errors.js';
import { bundleOf, cleanupDetached, stopShim } from '../detached.js';
import { flag, parseArgs } from '../args.js';

export default async function rm(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['force', 'f'], kind: 'bool' }, { names: ['volumes', 'v'], kind: 'bool' }], { stopAtPositional: false });
  if (p.positional.length === 0) throw new ValidationError('"nsbox rm" requires at least 1 argument.', 'container');
  const store = await ContainerStore.open();
  let failed = 0;
  for (const ref of p.positional) {
    try {
      const r = await store.get(ref);
      const sup = r.supervisor;
      const bundle = bundleOf(r);
      if (bundle) {
        if ((r.state === 'running' || r.state === 'paused') && !flag(p, 'force')) {
          throw new InvalidStateError(`cannot remove container "${ref}": container is running: stop the container before removing or force remove`);
        }
        if (r.state === 'running' || r.state === 'paused') await stopShim(bundle, 0);
        await cleanupDetached(bundle);
      } else if ((r.state === 'running' || r.state === 'paused') && flag(p, 'force') && sup) {
        // Only the very process recorded (same start time): a recycled pid is never signalled.
        if (sup.pidStartTime === undefined || (await processStartTime(sup.pid)) === sup.pidStartTime) {
          try {
            process.kill(sup.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      await store.remove(r.id, { force: flag(p, 'force') });
      process.stdout.write(`${ref}\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`Error response from nsbox: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
