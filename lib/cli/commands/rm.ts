/** nsbox rm [-f] CONTAINER [CONTAINER...] */
import { processStartTime } from '../../engine/index.js';
import { InvalidStateError } from '../../errors.js';
import { bundleOf, cleanupDetached, stopShim } from '../detached.js';
import { eachContainer } from '../each-container.js';
import { flag, parseArgs } from '../args.js';

export default async function rm(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['force', 'f'], kind: 'bool' }, { names: ['volumes', 'v'], kind: 'bool' }], { stopAtPositional: false });
  const force = flag(p, 'force');
  return eachContainer('rm', p.positional, async (r, store, ref) => {
    const sup = r.supervisor;
    const running = r.state === 'running' || r.state === 'paused';
    const bundle = bundleOf(r);
    if (bundle) {
      if (running && !force) {
        throw new InvalidStateError(`cannot remove container "${ref}": container is running: stop the container before removing or force remove`);
      }
      if (running) await stopShim(bundle, 0);
      await cleanupDetached(bundle);
    } else if (running && force && sup) {
      // Only the very process recorded (same start time): a recycled pid is never signalled.
      if (sup.pidStartTime === undefined || (await processStartTime(sup.pid)) === sup.pidStartTime) {
        try {
          process.kill(sup.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await store.remove(r.id, { force });
  });
}
