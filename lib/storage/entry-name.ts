/**
 * A layer entry's name (or link target) as a clean path relative to the layer root, or the reason it
 * may not be one: no NUL, no absolute path, no `..`, no over-long component or path.
 */
const NAME_MAX = 255;
const PATH_MAX = 4000;

/** `what` is 'entry' for the entry's own name, else what the name is ("hard link target"). */
export function cleanEntryName(name: string, what: string, refuse: (why: string) => Error): string {
  if (name.includes('\0')) throw refuse(`has a NUL byte in its ${what === 'entry' ? 'name' : what}`);
  if (name.startsWith('/')) {
    throw refuse(what === 'entry' ? 'is an absolute path: it escapes the layer directory' : `has an absolute ${what} "${name}": it escapes the layer directory`);
  }
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      throw refuse(what === 'entry' ? 'escapes the layer directory (".." component)' : `has ${what} "${name}" that escapes the layer directory`);
    }
    if (Buffer.byteLength(c) > NAME_MAX) throw refuse(`has a name component longer than ${NAME_MAX} bytes`);
    out.push(c);
  }
  const rel = out.join('/');
  if (Buffer.byteLength(rel) > PATH_MAX) throw refuse(`has a ${what === 'entry' ? 'name' : what} longer than ${PATH_MAX} bytes`);
  return rel;
}
