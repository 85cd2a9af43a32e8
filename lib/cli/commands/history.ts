/** nsbox history [--no-trunc] [-q] [-H=false] [--format TEMPLATE] IMAGE: docker's table, newest first. */
import { ValidationError } from '../../errors.js';
import { flag, parseArgs, value } from '../args.js';
import { formatRows } from '../format-template.js';
import { humanSize, shortId, table, timeAgo } from '../output.js';
import { openEngine } from '../open-engine.js';

export default async function history(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { names: ['no-trunc'], kind: 'bool' },
    { names: ['quiet', 'q'], kind: 'bool' },
    { names: ['human', 'H'], kind: 'value' },
    { names: ['format'], kind: 'value' },
  ], { stopAtPositional: false });
  if (p.positional.length !== 1) throw new ValidationError('"nsbox history" requires exactly 1 argument.', 'image');
  const entries = await (await openEngine()).images.history(p.positional[0]!);
  const noTrunc = flag(p, 'no-trunc');
  const human = value(p, 'human') !== 'false';
  const id = (i: string) => (i === '<missing>' || noTrunc ? i : shortId(i));
  if (flag(p, 'quiet')) {
    process.stdout.write(entries.map((e) => `${id(e.id)}\n`).join(''));
    return 0;
  }
  const createdBy = (s: string) => (noTrunc || s.length <= 45 ? s : `${s.slice(0, 44)}…`);
  const rows = entries.map((e) => ({
    ID: id(e.id),
    CreatedSince: human ? timeAgo(e.created || undefined) : e.created,
    CreatedAt: e.created,
    CreatedBy: createdBy(e.createdBy),
    Size: human ? humanSize(e.size) : String(e.size),
    Comment: e.comment,
  }));
  const format = value(p, 'format');
  if (format) {
    process.stdout.write(formatRows(format, rows, { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' }));
    return 0;
  }
  process.stdout.write(table(['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment])));
  return 0;
}
