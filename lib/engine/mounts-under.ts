/**
 * Mount points at or below a directory, from /proc/self/mountinfo. Removing a container's directory
 * must not descend into a mount still there (an overlay rootfs, a bind of host data): `rm -r` would
 * delete through it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export async function mountsUnder(dir: string, proc = '/proc'): Promise<string[]> {
  const text = readFileSync(path.join(proc, 'self', 'mountinfo'), 'utf8');
  const top = path.resolve(dir);
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const mp = unescape(field);
    if (mp === top || mp.startsWith(`${top}/`)) out.push(mp);
  }
  return out;
}
