/**
 * nsbox rm [-f] [-v] CONTAINER [CONTAINER...]: the record, the writable layer, the logs and the
 * cgroup; -v its anonymous volumes. `--auto-remove` (not docker's) is the shim's exit command for a
 * --rm container: Engine.autoRemove, which keeps a failure in the record (`--run STARTED_AT`: only
 * if that run is still the container's last one).
 */
import { flag, parseArgs, value } from '../args.js';
import { eachContainer } from '../each-container.js';

export default async function rm(argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    [{ names: ['force', 'f'], kind: 'bool' }, { names: ['volumes', 'v'], kind: 'bool' }, { names: ['auto-remove'], kind: 'bool' }, { names: ['run'], kind: 'value' }],
    { stopAtPositional: false },
  );
  const force = flag(p, 'force');
  const run = value(p, 'run');
  if (flag(p, 'auto-remove')) return eachContainer('rm', p.positional, (engine, ref) => engine.autoRemove(ref, run));
  return eachContainer('rm', p.positional, (engine, ref) => engine.remove(ref, { force, volumes: flag(p, 'volumes') }));
}
