/**
 * Where `Image.rollback` moves a tag: a digest (or a unique prefix) its journal lists, or -N lines
 * back from where it points now. The journal itself is the image store's (lib/storage/image-store.ts).
 */
import { NotFoundError, ValidationError } from '../errors.js';
import type { JournalEntry } from '../storage/index.js';

export /** The digest a rollback goes to: `to` as a digest (prefix) in the journal, or -N moves back from its end. */
function pickRollback(ref: string, log: readonly JournalEntry[], current: string | undefined, to: string | number): string {
  if (!log.length) throw new NotFoundError(`${ref} has no journal to roll back along`, { code: 'ENOENT' });
  const n = typeof to === 'number' ? to : /^-\d+$/.test(to) ? Number(to) : undefined;
  if (n !== undefined) {
    if (n >= 0) throw new ValidationError(`rollback: -N counts back from the newest entry (-1 is the previous image), not ${to}`, 'to');
    // the journal's last line is where the tag points now (unless it was untagged since)
    const end = log.at(-1)!.digest === current ? log.length - 1 : log.length;
    const entry = log[end + n];
    if (!entry) throw new NotFoundError(`${ref}: its journal has ${end} earlier entr${end === 1 ? 'y' : 'ies'}, not ${-n}`, { code: 'ENOENT' });
    return entry.digest;
  }
  const want = (to as string).replace(/^sha256:/, '');
  const hits = [...new Set(log.map((e) => e.digest))].filter((d) => d.slice(7).startsWith(want));
  if (!hits.length) throw new NotFoundError(`${ref} never pointed to ${to} (nsbox image log ${ref})`, { code: 'ENOENT' });
  if (hits.length > 1) throw new ValidationError(`${to} names ${hits.length} images in ${ref}'s journal: give more of the digest`, 'to');
  return hits[0]!;
}
