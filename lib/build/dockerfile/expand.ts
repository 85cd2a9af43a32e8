/**
 * Variable substitution as the Dockerfile reference gives it, for the instructions that have it
 * (FROM, ARG, ENV, LABEL, COPY, ADD, WORKDIR, USER, VOLUME, EXPOSE, STOPSIGNAL, ONBUILD's none, and
 * the flags): `$V`, `${V}`, `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?msg}`, `${V?msg}`, quotes
 * removed as a shell removes them ('…' literal, "…" with substitution), the escape token quoting
 * the next character (`\$` is a dollar). One environment per instruction: `ENV a=1 b=$a` sees the
 * a from before it.
 */
import { ValidationError } from '../../errors.js';

export type Env = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

function lookup(env: Env, name: string): string | undefined {
  return env instanceof Map ? env.get(name) : (env as Record<string, string>)[name];
}

class Lexer {
  i = 0;
  constructor(
    readonly s: string,
    readonly env: Env,
    readonly escape: string,
  ) {}

  bad(why: string): ValidationError {
    return new ValidationError(`${why} in ${JSON.stringify(this.s)}`, 'dockerfile');
  }

  /**
   * Words (split on unquoted blanks) or one word (blanks kept), with quotes and escapes removed and
   * variables expanded. `stop` ends a word (for `${V:-word}`, the closing brace).
   */
  run(split: boolean, stop?: string): string[] {
    const words: string[] = [];
    let cur = '';
    let inWord = false;
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (stop !== undefined && c === stop) break;
      if (split && /\s/.test(c)) {
        if (inWord) words.push(cur);
        cur = '';
        inWord = false;
        this.i++;
        continue;
      }
      inWord = true;
      if (c === this.escape) {
        this.i++;
        if (this.i < this.s.length) cur += this.s[this.i++];
        else cur += c;
      } else if (c === "'") {
        const end = this.s.indexOf("'", this.i + 1);
        if (end < 0) throw this.bad('unexpected end of statement while looking for matching single-quote');
        cur += this.s.slice(this.i + 1, end);
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        cur += this.doubleQuoted();
      } else if (c === '$') {
        cur += this.dollar();
      } else {
        cur += c;
        this.i++;
      }
    }
    if (inWord || !split) words.push(cur);
    return words;
  }

  doubleQuoted(): string {
    let out = '';
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === this.escape && this.i + 1 < this.s.length) {
        const n = this.s[this.i + 1]!;
        // inside double quotes the escape only quotes ", $ and itself
        if (n === '"' || n === '$' || n === this.escape) {
          out += n;
          this.i += 2;
          continue;
        }
        out += c;
        this.i++;
        continue;
      }
      if (c === '$') out += this.dollar();
      else {
        out += c;
        this.i++;
      }
    }
    throw this.bad('unexpected end of statement while looking for matching double-quote');
  }

  dollar(): string {
    this.i++; // the $
    const c = this.s[this.i];
    if (c === '{') {
      this.i++;
      const name = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9]+/.exec(this.s.slice(this.i))?.[0];
      if (!name) throw this.bad('missing or invalid variable name after ${');
      this.i += name.length;
      const value = lookup(this.env, name);
      if (this.s[this.i] === '}') {
        this.i++;
        return value ?? '';
      }
      if (this.i >= this.s.length) throw this.bad('missing } in substitution');
      const op = /^(:?[-+?])/.exec(this.s.slice(this.i))?.[0];
      if (!op) throw this.bad(`unsupported modifier (${this.s[this.i] ?? 'end'}) in substitution`);
      this.i += op.length;
      const word = this.run(false, '}')[0] ?? '';
      if (this.s[this.i] !== '}') throw this.bad('missing } in substitution');
      this.i++;
      const set = value !== undefined && (op.startsWith(':') ? value !== '' : true);
      switch (op.replace(':', '')) {
        case '-':
          return set ? value! : word;
        case '+':
          return set ? word : '';
        default:
          if (!set) throw new ValidationError(`${name}: ${word || 'is not allowed to be unset'}`, 'dockerfile');
          return value!;
      }
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9]/.exec(this.s.slice(this.i))?.[0];
    if (!name) return '$';
    this.i += name.length;
    return lookup(this.env, name) ?? '';
  }
}

/** One word: quotes removed, variables expanded, blanks kept. */
export function expandWord(s: string, env: Env, escape = '\\'): string {
  return new Lexer(s, env, escape).run(false)[0] ?? '';
}

/** Words split on unquoted blanks, each with quotes removed and variables expanded. */
export function expandWords(s: string, env: Env, escape = '\\'): string[] {
  return new Lexer(s, env, escape).run(true);
}

/**
 * The raw words of `K=V K2="a b"` (split on unquoted blanks; quotes and escapes kept, for a later
 * expandWord): how ENV, LABEL and ARG lines are split before their values are expanded.
 */
export function rawWords(s: string, escape = '\\'): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote === undefined && /\s/.test(c)) {
      if (cur) out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
    if (c === escape && quote !== "'" && i + 1 < s.length) cur += s[++i];
    else if (quote === undefined && (c === '"' || c === "'")) quote = c;
    else if (c === quote) quote = undefined;
  }
  if (quote !== undefined) throw new ValidationError(`unterminated ${quote} quote in ${JSON.stringify(s)}`, 'dockerfile');
  if (cur) out.push(cur);
  return out;
}

/**
 * `K=V …` pairs with their values expanded in `env` (all against the same environment), or the
 * legacy `K V…` form (one pair, the rest of the line its value) when the first word has no `=`
 * and `legacy` allows it.
 */
export function keyValuePairs(s: string, env: Env, escape: string, what: string, legacy = true): Array<[string, string]> {
  const words = rawWords(s, escape);
  if (words.length === 0) throw new ValidationError(`${what} requires at least one argument`, 'dockerfile');
  if (legacy && !words[0]!.includes('=')) {
    const rest = s.trim().slice(words[0]!.length).trim();
    if (rest === '') throw new ValidationError(`${what} must have two arguments`, 'dockerfile');
    return [[expandWord(words[0]!, env, escape), expandWord(rest, env, escape)]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new ValidationError(`${what}: ${JSON.stringify(w)} is not KEY=value`, 'dockerfile');
    return [expandWord(w.slice(0, eq), env, escape), expandWord(w.slice(eq + 1), env, escape)];
  });
}
