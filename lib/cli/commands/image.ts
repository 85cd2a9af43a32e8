/**
 * nsbox image ls|rm|prune|inspect|log|history|tag|push|pull|rollback: docker's `image` group, plus
 * `log` (a tag's journal) and `inspect --provenance` (who built an image, when, how, from what).
 */
import { ValidationError } from '../../errors.js';
import { parseReference } from '../../image/reference.js';
import { flag, parseArgs, value } from '../args.js';
import { humanSize, table } from '../output.js';
import { openEngine } from '../open-engine.js';

async function log(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['no-trunc'], kind: 'bool' }, { names: ['format'], kind: 'value' }], { stopAtPositional: false });
  if (p.positional.length !== 1) throw new ValidationError('"nsbox image log" requires exactly 1 argument.', 'image');
  const ref = p.positional[0]!;
  const engine = await openEngine();
  const entries = await engine.images.log(ref);
  const current = await engine.images.get(ref).then((i) => i.digest, () => undefined);
  if (value(p, 'format') === 'json') {
    process.stdout.write(`${JSON.stringify(entries)}\n`);
    return 0;
  }
  const noTrunc = flag(p, 'no-trunc');
  // newest first, as git log; `-N` is how far back `nsbox rollback -N` goes
  const rows = entries.map((e, i) => [
    e.digest === current && i === entries.length - 1 ? '*' : `-${entries.length - 1 - i}`,
    noTrunc ? e.digest : e.digest.slice(0, 19),
    e.at,
    e.by,
    e.user ?? '',
    e.from ? (noTrunc || e.from.length <= 40 ? e.from : `${e.from.slice(0, 39)}…`) : '',
  ]).reverse();
  process.stdout.write(table(['', 'DIGEST', 'WHEN', 'BY', 'WHO', 'FROM'], rows));
  return 0;
}

async function inspect(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['provenance'], kind: 'bool' }, { names: ['format', 'f'], kind: 'value' }], { stopAtPositional: false });
  if (p.positional.length === 0) throw new ValidationError('"nsbox image inspect" requires at least 1 argument.', 'image');
  if (!flag(p, 'provenance')) return (await import('./inspect.js')).default(['--type', 'image', ...argv]);
  const engine = await openEngine();
  const out = [];
  for (const ref of p.positional) {
    const image = await engine.images.get(ref);
    const tags = image.names.filter((n) => !n.includes('@'));
    out.push({
      Id: image.id,
      Digest: image.digest,
      RepoTags: tags.map((n) => parseReference(n).familiar),
      ...(await image.provenance()),
      Journal: Object.fromEntries(await Promise.all(tags.map(async (n) => [parseReference(n).familiar, await engine.images.log(n)] as const))),
    });
  }
  process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
  return 0;
}

async function prune(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['all', 'a'], kind: 'bool' }, { names: ['force', 'f'], kind: 'bool' }, { names: ['forget'], kind: 'bool' }]);
  const engine = await openEngine();
  const r = await engine.pruneImages({ all: flag(p, 'all'), forget: flag(p, 'forget') });
  if (r.removed.length) {
    const lines = r.removed.flatMap((i) => [...i.untagged.map((u) => `untagged: ${parseReference(u).familiar}`), ...i.deleted.map((d) => `deleted: ${d}`)]);
    process.stdout.write(`Deleted Images:\n${lines.map((l) => `${l}\n`).join('')}\n`);
  }
  process.stdout.write(`Total reclaimed space: ${humanSize(r.spaceReclaimed)}\n`);
  return 0;
}

type Command = () => Promise<{ default: (a: string[]) => Promise<number> }>;
const aliases: Record<string, Command> = {
  ls: () => import('./images.js'),
  list: () => import('./images.js'),
  rm: () => import('./rmi.js'),
  remove: () => import('./rmi.js'),
  history: () => import('./history.js'),
  tag: () => import('./tag.js'),
  push: () => import('./push.js'),
  pull: () => import('./pull.js'),
  rollback: () => import('./rollback.js'),
  save: () => import('./save.js'),
  load: () => import('./load.js'),
  import: () => import('./import.js'),
  build: () => import('./build.js'),
};

export default async function image(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'log') return log(rest);
  if (sub === 'inspect') return inspect(rest);
  if (sub === 'prune') return prune(rest);
  const to = sub ? aliases[sub] : undefined;
  if (!to) throw new ValidationError(`"nsbox image" takes ls, rm, prune, inspect, log, history, tag, push, pull, rollback, save, load, import or build${sub ? `, not ${sub}` : ''}`, 'command');
  return (await to()).default(rest);
}
