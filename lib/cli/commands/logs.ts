/** nsbox logs [-f] [-t] [--tail N] [--since T] CONTAINER: the json-file log that nsbox-shim keeps. */
import { ValidationError } from '../../errors.js';
import { flag, parseArgs, value } from '../args.js';
import { openEngine } from '../open-engine.js';

/** docker's --since: unix seconds, an RFC 3339 time, or a duration before now (10m, 1h30m, 45s). */
export function parseSince(text: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const d = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(text);
  if (d && text !== '') return (now - ((Number(d[1] ?? 0) * 60 + Number(d[2] ?? 0)) * 60 + Number(d[3] ?? 0)) * 1000) / 1000;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new ValidationError(`invalid value for "since": ${text}: use a time (RFC 3339), unix seconds or a duration (10m)`, 'since');
  return t / 1000;
}

export default async function logs(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['follow', 'f'], kind: 'bool' },
    { names: ['timestamps', 't'], kind: 'bool' },
    { names: ['tail', 'n'], kind: 'value' },
    { names: ['since'], kind: 'value' },
    { names: ['until'], kind: 'value' },
  ]);
  const ref = p.positional[0];
  if (!ref) throw new ValidationError('"nsbox logs" requires exactly 1 argument.', 'container');
  const tail = value(p, 'tail');
  const engine = await openEngine();
  const stamps = flag(p, 'timestamps');
  for await (const e of engine.logs(ref, {
    follow: flag(p, 'follow'),
    ...(tail && tail !== 'all' ? { tail: Number(tail) } : {}),
    ...(value(p, 'since') ? { since: parseSince(value(p, 'since')!) } : {}),
    ...(value(p, 'until') ? { until: parseSince(value(p, 'until')!) } : {}),
  })) {
    (e.stream === 'stderr' ? process.stderr : process.stdout).write(stamps ? `${e.time} ${e.log}` : e.log);
  }
  return 0;
}
