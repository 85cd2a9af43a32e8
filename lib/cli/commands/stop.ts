/** nsbox stop [-t SECONDS] [-s SIGNAL] CONTAINER [...]: the stop signal, then SIGKILL after the timeout (10 s). */
import { parseArgs, value } from '../args.js';
import { eachContainer, unlessAlready } from '../each-container.js';

export default async function stop(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['time', 't', 'timeout'], kind: 'value' }, { names: ['signal', 's'], kind: 'value' }], { stopAtPositional: false });
  const timeout = Number(value(p, 'time') ?? 10);
  const signal = value(p, 'signal');
  return eachContainer('stop', p.positional, (engine, ref) => unlessAlready(() => engine.stop(ref, { timeout, ...(signal ? { signal } : {}) })));
}
