/** nsbox pull [-q] [--platform os/arch] NAME[:TAG|@DIGEST] */
import type { PullProgress } from '../../image/image.js';
import { openEngine } from '../open-engine.js';
import { parseReference } from '../../image/reference.js';
import { ValidationError } from '../../errors.js';
import { flag, parseArgs, value } from '../args.js';
import { humanSize, shortId } from '../output.js';
import { parsePlatform } from '../../image/registry/platform.js';

const PHASE: Record<PullProgress['phase'], string> = {
  resolved: 'Resolved', exists: 'Already exists', downloading: 'Downloading', retrying: 'Retrying', done: 'Download complete',
  unpacking: 'Extracting', unpacked: 'Pull complete',
};

/** Per-layer status lines; on a terminal redrawn in place, else one line per change of phase. */
export function progressPrinter(out: NodeJS.WriteStream): (p: PullProgress) => void {
  const order: string[] = [];
  const lines = new Map<string, string>();
  const lastPhase = new Map<string, string>();
  const tty = out.isTTY === true;
  let drawn = 0;
  return (p) => {
    if (p.phase === 'resolved') return;
    const id = shortId(p.id);
    let text = `${id}: ${PHASE[p.phase]}`;
    if (p.phase === 'downloading' && p.total) {
      const width = 40;
      const done = Math.min(width, Math.floor(((p.done ?? 0) / p.total) * width));
      text += ` [${'='.repeat(Math.max(0, done - 1))}${done > 0 ? '>' : ''}${' '.repeat(width - done)}] ${humanSize(p.done ?? 0)}/${humanSize(p.total)}`;
    }
    if (!lines.has(id)) order.push(id);
    lines.set(id, text);
    if (!tty) {
      if (lastPhase.get(id) !== p.phase) out.write(`${id}: ${PHASE[p.phase]}\n`);
      lastPhase.set(id, p.phase);
      return;
    }
    if (drawn) out.write(`\x1b[${drawn}A`);
    for (const l of order) out.write(`\x1b[2K${lines.get(l)}\n`);
    drawn = order.length;
  };
}

export default async function pull(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['quiet', 'q'], kind: 'bool' },
    { names: ['platform'], kind: 'value' },
    { names: ['all-tags', 'a'], kind: 'bool' },
  ]);
  const name = p.positional[0];
  if (!name || p.positional.length > 1) throw new ValidationError('"nsbox pull" requires exactly 1 argument.', 'name');
  const ref = parseReference(name);
  const quiet = flag(p, 'quiet');
  if (!quiet) process.stdout.write(`${ref.tag && !ref.digest ? ref.tag : ref.digest ?? 'latest'}: Pulling from ${ref.path}\n`);
  const platform = value(p, 'platform');
  const image = await (await openEngine()).images.pull(name, { ...(quiet ? {} : { onProgress: progressPrinter(process.stdout) }), ...(platform ? { platform: parsePlatform(platform) } : {}) });
  if (!quiet) {
    process.stdout.write(`Digest: ${image.digest}\nStatus: Downloaded newer image for ${ref.familiar}\n`);
  }
  process.stdout.write(`${ref.toString()}\n`);
  return 0;
}
