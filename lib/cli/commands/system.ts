/**
 * nsbox system prune [-f] [-a] [--volumes]: removes stopped containers, the user networks no
 * container uses, dangling images (with -a every image no container uses), with --volumes the
 * anonymous volumes no container uses, the build cache no image shares (with -a all of it), and
 * the empty cgroups a crash left behind.
 * nsbox system df [-v]: the disk usage of images, containers, volumes and the build cache.
 * nsbox system info: see `nsbox info`.
 */
import { createInterface } from 'node:readline/promises';
import { Engine } from '../../engine/index.js';
import { ValidationError } from '../../errors.js';
import { NetworkStore } from '../../network/network-store.js';
import { parseReference } from '../../image/reference.js';
import { flag, parseArgs } from '../args.js';
import { humanSize, table } from '../output.js';
import { pruneBuildCache } from '../../build/prune.js';
import { diskUsage, diskUsageRows } from '../../engine/disk-usage.js';
import { prunedCacheText } from './builder.js';

async function df(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['verbose', 'v'], kind: 'bool' }]);
  const engine = await Engine.open({ repair: false });
  const u = await diskUsage(engine);
  const rows = diskUsageRows(u).map((r) => [r.type, String(r.total), String(r.active), humanSize(r.size), `${humanSize(r.reclaimable)}${r.size ? ` (${Math.round((r.reclaimable * 100) / r.size)}%)` : ''}`]);
  process.stdout.write(table(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], rows));
  if (flag(p, 'verbose') && u.buildCache.length) {
    const cache = u.buildCache.map((c) => [c.id.slice(0, 25), c.type, humanSize(c.size), c.createdAt.toISOString(), c.lastUsedAt.toISOString(), String(c.shared)]);
    process.stdout.write(`\nBuild cache usage: ${humanSize(u.buildCache.reduce((n, c) => n + (c.shared ? 0 : c.size), 0))}\n\n${table(['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'SHARED'], cache)}`);
  }
  return 0;
}

async function confirm(all: boolean, volumes: boolean): Promise<boolean> {
  const images = all ? 'all images without at least one container associated to them' : 'all dangling images';
  const vols = volumes ? '  - all anonymous volumes not used by at least one container\n' : '';
  process.stdout.write(`WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n${vols}  - ${images}\n  - ${all ? 'all' : 'unused'} build cache\n  - empty cgroups left behind by nsbox processes that crashed\n\n`);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question('Are you sure you want to continue? [y/N] ')).trim());
  } finally {
    rl.close();
  }
}

export default async function system(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'info') return (await import('./info.js')).default();
  if (sub === 'df') return df(rest);
  if (sub !== 'prune') throw new ValidationError(`"nsbox system" takes prune, df or info${sub ? `, not ${sub}` : ''}`, 'command');
  const p = parseArgs(rest, [{ names: ['force', 'f'], kind: 'bool' }, { names: ['all', 'a'], kind: 'bool' }, { names: ['volumes'], kind: 'bool' }]);
  if (!flag(p, 'force') && !(await confirm(flag(p, 'all'), flag(p, 'volumes')))) return 0;
  const engine = await Engine.open({ owned: false });
  const { containers, cgroups } = await engine.prune();
  if (containers.length) process.stdout.write(`Deleted Containers:\n${containers.map((c) => `${c}\n`).join('')}\n`);
  const networks = await (await NetworkStore.open({ root: engine.root })).prune();
  if (networks.length) process.stdout.write(`Deleted Networks:\n${networks.map((n) => `${n.name}\n`).join('')}\n`);
  if (flag(p, 'volumes')) {
    const { volumes } = await engine.pruneVolumes();
    if (volumes.length) process.stdout.write(`Deleted Volumes:\n${volumes.map((v) => `${v}\n`).join('')}\n`);
  }
  const images = await engine.pruneImages({ all: flag(p, 'all') });
  if (images.removed.length) {
    const lines = images.removed.flatMap((i) => [...i.untagged.map((u) => `untagged: ${parseReference(u).familiar}`), ...i.deleted.map((d) => `deleted: ${d}`)]);
    process.stdout.write(`Deleted Images:\n${lines.map((l) => `${l}\n`).join('')}\n`);
  }
  const cache = await pruneBuildCache({ root: engine.root, all: flag(p, 'all') });
  process.stdout.write(prunedCacheText(cache, false));
  if (cgroups.length) process.stdout.write(`Deleted cgroups:\n${cgroups.map((c) => `${c}\n`).join('')}\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(images.spaceReclaimed + cache.spaceReclaimed)}\n`);
  return 0;
}
