/** nsbox push [-a|--all-tags] [-q] NAME[:TAG]: docker's push, with its per-layer lines. */
import type { PushProgress, PushResult } from '../../image/push.js';
import { parseReference } from '../../image/reference.js';
import { ValidationError } from '../../errors.js';
import { flag, parseArgs } from '../args.js';
import { humanSize, shortId } from '../output.js';
import { openEngine } from '../open-engine.js';

function statusText(p: PushProgress): string {
  switch (p.phase) {
    case 'preparing':
      return 'Preparing';
    case 'pushing':
      return 'Pushing';
    case 'pushed':
      return 'Pushed';
    case 'exists':
      return 'Layer already exists';
    case 'mounted':
      return `Mounted from ${p.from ?? ''}`;
  }
}

/** docker's push lines: on a terminal redrawn in place (with the bar), else one line per change of status. */
export function pushPrinter(out: NodeJS.WriteStream): { onProgress: (p: PushProgress) => void; reset: () => void } {
  let order: string[] = [];
  let lines = new Map<string, string>();
  let last = new Map<string, string>();
  const tty = out.isTTY === true;
  let drawn = 0;
  return {
    reset: () => {
      order = [];
      lines = new Map();
      last = new Map();
      drawn = 0;
    },
    onProgress: (p) => {
      const id = shortId(p.id);
      const status = statusText(p);
      let text = `${id}: ${status}`;
      if (p.phase === 'pushing' && p.total) {
        const width = 50;
        const done = Math.min(width, Math.floor(((p.done ?? 0) / p.total) * width));
        text += ` [${'='.repeat(Math.max(0, done - 1))}${done > 0 ? '>' : ''}${' '.repeat(width - done)}]  ${humanSize(p.done ?? 0)}/${humanSize(p.total)}`;
      }
      if (!lines.has(id)) order.push(id);
      lines.set(id, text);
      if (!tty) {
        if (last.get(id) !== status) out.write(`${id}: ${status}\n`);
        last.set(id, status);
        return;
      }
      if (drawn) out.write(`\x1b[${drawn}A`);
      for (const l of order) out.write(`\x1b[2K${lines.get(l)}\n`);
      drawn = order.length;
    },
  };
}

export default async function push(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['all-tags', 'a'], kind: 'bool' },
    { names: ['quiet', 'q'], kind: 'bool' },
  ]);
  const name = p.positional[0];
  if (!name || p.positional.length > 1) throw new ValidationError('"nsbox push" requires exactly 1 argument.', 'name');
  const ref = parseReference(name);
  const quiet = flag(p, 'quiet');
  const allTags = flag(p, 'all-tags');
  const engine = await openEngine();
  const printer = quiet ? undefined : pushPrinter(process.stdout);
  if (!quiet) process.stdout.write(`The push refers to repository [${ref.familiar.replace(/[:@][^/]*$/, '')}]\n`);
  const done = (r: PushResult) => {
    for (const w of r.warnings) process.stderr.write(`WARNING: ${w}\n`);
    if (!quiet) {
      process.stdout.write(`${r.tag}: digest: ${r.digest} size: ${r.size}\n`);
      printer?.reset();
    }
  };
  const results = await engine.images.push(name, {
    allTags,
    ...(printer ? { onProgress: printer.onProgress } : {}),
    onPushed: done,
  });
  if (quiet) for (const r of results) process.stdout.write(`${parseReference(r.reference).familiar}\n`);
  return 0;
}
