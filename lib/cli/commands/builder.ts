/**
 * nsbox builder prune [-a] [--keep-storage SIZE] [-f]: removes the build cache (the step records an
 * image does not share, with -a all of them, and the RUN cache mounts; with --keep-storage the
 * least recently used until the cache is no larger), as docker's `builder prune`.
 */
import { createInterface } from 'node:readline/promises';
import { pruneBuildCache } from '../../build/prune.js';
import { parseBytes } from '../../cgroup/resources.js';
import { ValidationError } from '../../errors.js';
import { flag, parseArgs, value } from '../args.js';
import { humanSize } from '../output.js';

async function confirm(all: boolean): Promise<boolean> {
  process.stdout.write(`WARNING! This will remove all ${all ? '' : 'dangling '}build cache.\n`);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question('Are you sure you want to continue? [y/N] ')).trim());
  } finally {
    rl.close();
  }
}

/** docker's output of a build cache prune: the ids, then the total. */
export function prunedCacheText(r: { deleted: string[]; spaceReclaimed: number }, total = true): string {
  const ids = r.deleted.length ? `Deleted build cache objects:\n${r.deleted.map((d) => `${d.slice(0, 25)}\n`).join('')}\n` : '';
  return `${ids}${total ? `Total reclaimed space: ${humanSize(r.spaceReclaimed)}\n` : ''}`;
}

export default async function builder(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'prune') throw new ValidationError(`"nsbox builder" takes prune${sub ? `, not ${sub}` : ''}`, 'command');
  const p = parseArgs(rest, [{ names: ['all', 'a'], kind: 'bool' }, { names: ['force', 'f'], kind: 'bool' }, { names: ['keep-storage'], kind: 'value' }]);
  const keep = value(p, 'keep-storage');
  let keepStorage: number | undefined;
  try {
    if (keep !== undefined) keepStorage = parseBytes(keep);
  } catch (e) {
    throw new ValidationError(`--keep-storage ${keep}: ${(e as Error).message}`, 'keep-storage');
  }
  if (!flag(p, 'force') && !(await confirm(flag(p, 'all')))) return 0;
  const r = await pruneBuildCache({ all: flag(p, 'all'), ...(keepStorage !== undefined ? { keepStorage } : {}) });
  process.stdout.write(prunedCacheText(r));
  return 0;
}
