/** nsbox rm [-f] [-v] CONTAINER [CONTAINER...]: the record, the writable layer, the logs and the cgroup; -v its anonymous volumes. */
import { flag, parseArgs } from '../args.js';
import { eachContainer } from '../each-container.js';

export default async function rm(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['force', 'f'], kind: 'bool' }, { names: ['volumes', 'v'], kind: 'bool' }], { stopAtPositional: false });
  const force = flag(p, 'force');
  return eachContainer('rm', p.positional, (engine, ref) => engine.remove(ref, { force, volumes: flag(p, 'volumes') }));
}
