/** nsbox images [-a] [-q] [--digests] [--no-trunc] [--format json] [REPOSITORY[:TAG]] */
import type { Image } from '../../image/image.js';
import { openEngine } from '../open-engine.js';
import { parseReference } from '../../image/reference.js';
import { flag, parseArgs, value } from '../args.js';
import { humanSize, shortId, table, timeAgo } from '../output.js';

export default async function images(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['quiet', 'q'], kind: 'bool' },
    { names: ['digests'], kind: 'bool' },
    { names: ['no-trunc'], kind: 'bool' },
    { names: ['all', 'a'], kind: 'bool' },
    { names: ['format'], kind: 'value' },
  ]);
  const filter = p.positional[0];
  const all = await (await openEngine()).images.listed({ all: flag(p, 'all') });
  const rows: Array<{ repo: string; tag: string; image: Image }> = [];
  for (const image of all) {
    const names = image.names.length ? image.names : ['<none>:<none>'];
    for (const n of names) {
      let repo = '<none>';
      let tag = '<none>';
      if (n !== '<none>:<none>') {
        const r = parseReference(n);
        const suffix = r.digest ? `@${r.digest}` : r.tag ? `:${r.tag}` : '';
        repo = suffix && r.familiar.endsWith(suffix) ? r.familiar.slice(0, -suffix.length) : r.familiar;
        tag = r.tag ?? '<none>';
      }
      if (filter && repo !== filter && `${repo}:${tag}` !== filter) continue;
      rows.push({ repo, tag, image });
    }
  }
  const id = (i: Image) => (flag(p, 'no-trunc') ? i.id : shortId(i.id));
  if (flag(p, 'quiet')) {
    process.stdout.write([...new Set(rows.map((r) => id(r.image)))].map((x) => `${x}\n`).join(''));
    return 0;
  }
  if (value(p, 'format') === 'json') {
    for (const r of rows) {
      const line = { Repository: r.repo, Tag: r.tag, ID: id(r.image), Digest: r.image.digest, CreatedAt: r.image.created ?? '', CreatedSince: timeAgo(r.image.created), Size: humanSize(r.image.size) };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
    return 0;
  }
  const header = ['REPOSITORY', 'TAG', ...(flag(p, 'digests') ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
  process.stdout.write(
    table(header, rows.map((r) => [r.repo, r.tag, ...(flag(p, 'digests') ? [r.image.digest] : []), id(r.image), timeAgo(r.image.created), humanSize(r.image.size)])),
  );
  return 0;
}
