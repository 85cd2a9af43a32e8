/**
 * nsbox cp [-a] [-L] SRC DEST: docker cp. One of SRC and DEST is CONTAINER:PATH, the other a host
 * path, or `-` for a tar on stdin (extracted into DEST, a directory) or stdout (SRC as a tar).
 * Running and stopped containers alike; docker cp's rules (lib/engine/copy.ts).
 */
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ValidationError } from '../../errors.js';
import { copyPath } from '../../engine/copy.js';
import { RootDir } from '../../engine/in-root.js';
import { parseArgs } from '../args.js';
import { openEngine } from '../open-engine.js';

type End = { container: string; path: string } | { local: string };

/** docker's split: `-` and paths starting with `/` or `.` are local; otherwise `NAME:PATH` names a container. */
function endOf(arg: string): End {
  if (arg === '-' || arg.startsWith('/') || arg.startsWith('.')) return { local: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { local: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) || '/' };
}

/** A host path made absolute, keeping the trailing `/` or `/.` that docker cp's rules read. */
function hostPath(p: string): string {
  const abs = resolve(p);
  if (p.endsWith('/.') || p === '.') return `${abs === '/' ? '' : abs}/.`;
  if (p.endsWith('/') && abs !== '/') return `${abs}/`;
  return abs;
}

export default async function cp(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ names: ['archive', 'a'], kind: 'bool' }, { names: ['follow-link', 'L'], kind: 'bool' }, { names: ['quiet', 'q'], kind: 'bool' }], { stopAtPositional: false });
  const [srcArg, destArg, ...rest] = p.positional;
  if (!srcArg || !destArg || rest.length) throw new ValidationError('"nsbox cp" requires exactly 2 arguments: SRC_PATH|- and DEST_PATH|-, one of them CONTAINER:PATH', 'path');
  const src = endOf(srcArg);
  const dest = endOf(destArg);
  if ('container' in src && 'container' in dest) throw new ValidationError('copying between containers is not supported', 'path');
  if ('local' in src && 'local' in dest) throw new ValidationError('must specify at least one container source', 'path');
  const copyUIDGID = p.flags.get('archive') === true;
  const followLink = p.flags.get('follow-link') === true;
  const engine = await openEngine();
  if ('container' in src) {
    const to = (dest as { local: string }).local;
    if (to === '-') {
      const { tar } = await engine.getArchive(src.container, src.path);
      await pipeline(tar, process.stdout);
      return 0;
    }
    const { root } = await engine.openRoot(src.container);
    const host = RootDir.ofDir('/');
    try {
      await copyPath(root, src.path, host, hostPath(to), { copyUIDGID: true, followLink, fromName: `container ${src.container}`, toName: 'the host' });
    } finally {
      await host.close();
      await root.close();
    }
    return 0;
  }
  const into = dest as { container: string; path: string };
  if (src.local === '-') {
    await engine.putArchive(into.container, into.path, process.stdin, { copyUIDGID });
    return 0;
  }
  const { root } = await engine.openRoot(into.container);
  const host = RootDir.ofDir('/');
  try {
    await copyPath(host, hostPath(src.local), root, into.path, { copyUIDGID, followLink, fromName: 'the host', toName: `container ${into.container}` });
  } finally {
    await host.close();
    await root.close();
  }
  return 0;
}
