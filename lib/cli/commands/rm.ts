/**
 * nsbox rm [-f] [-v] CONTAINER [CONTAINER...]: the record, the writable layer, the logs and the
 * cgroup; -v its anonymous volumes. `--auto-remove` (not docker's) is the shim's exit command for a
 * --rm container: Engine.autoRemove, which keeps a failure in the record.
 */
import { flag, parseArgs } from '../args.js';
import { eachContainer } from '../each-container.js';

export default async function rm(argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    [{ names: ['force', 'f'], kind: 'bool' }, { names: ['volumes', 'v'], kind: 'bool' }, { names: ['auto-remove'], kind: 'bool' }],
    { stopAtPositional: false },
  );
  const force = flag(p, 'force');
  if (flag(p, 'auto-remove')) return eachContainer('rm', p.positional, (engine, ref) => engine.autoRemove(ref));
  return eachContainer('rm', p.positional, (engine, ref) => engine.remove(ref, { force, volumes: flag(p, 'volumes') }));
}
