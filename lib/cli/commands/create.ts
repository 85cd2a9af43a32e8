/**
 * nsbox create [OPTIONS] IMAGE [COMMAND] [ARG...]: docker's create, a container made with `run`'s
 * flags (its image pulled, its volumes and network options recorded) but not started: `nsbox start`
 * starts it later. Prints its id.
 */
import { parseArgs } from '../args.js';
import { openEngine } from '../open-engine.js';
import { SPECS, createFrom } from './run.js';

const CREATE_SPECS = SPECS.filter((s) => !s.names.includes('detach'));

export default async function create(argv: string[]): Promise<number> {
  const p = parseArgs(argv, CREATE_SPECS);
  const record = await createFrom(await openEngine(), p, false, 'create');
  process.stdout.write(`${record.id}\n`);
  return 0;
}
