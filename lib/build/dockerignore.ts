/**
 * `.dockerignore` with docker's matcher: one pattern a line, `#` comments, blank lines skipped,
 * patterns cleaned (`./a/../b` is `b`, a leading `/` dropped), `*` and `?` within one path
 * element, `[…]` classes, `**` any number of elements, `\` escaping, `!` re-including; the last
 * pattern that matches a path (or one of its parent directories) decides.
 */
import path from 'node:path';

interface Pattern {
  re: RegExp;
  exclusion: boolean;
}

function toRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // `**/` is any number of leading elements, including none; a trailing `**` anything
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

export class DockerIgnore {
  readonly #patterns: Pattern[];
  readonly hasExclusions: boolean;

  constructor(text = '') {
    this.#patterns = [];
    for (let line of text.split(/\r?\n/)) {
      line = line.trim();
      if (line === '' || line.startsWith('#')) continue;
      const exclusion = line.startsWith('!');
      if (exclusion) line = line.slice(1).trim();
      line = path.posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '');
      if (line === '' || line === '.') continue;
      this.#patterns.push({ re: toRegExp(line), exclusion });
    }
    this.hasExclusions = this.#patterns.some((p) => p.exclusion);
  }

  /** Whether the context-relative path `rel` is left out of the context. */
  ignores(rel: string): boolean {
    if (this.#patterns.length === 0) return false;
    const parents: string[] = [];
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) parents.push(parts.slice(0, i).join('/'));
    let matched = false;
    for (const p of this.#patterns) {
      if (p.re.test(rel) || parents.some((d) => p.re.test(d))) matched = !p.exclusion;
    }
    return matched;
  }
}
