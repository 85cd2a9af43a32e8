/**
 * The syntax of one Dockerfile instruction, shared by `import --change` and the builder to come:
 * the instruction word and its argument, the exec form (a JSON array) and the shell form, and the
 * `KEY=value` pairs of ENV and LABEL with their quoting.
 */

/** `CMD ["sh"]` → `{ instruction: 'CMD', rest: '["sh"]' }`; undefined when the line has no instruction word. */
export function splitInstruction(line: string): { instruction: string; rest: string } | undefined {
  const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(line);
  if (!m) return undefined;
  return { instruction: m[1]!.toUpperCase(), rest: (m[2] ?? '').trim() };
}

/** The exec form (`["sh", "-c", "x"]`) as it is; the shell form as `/bin/sh -c '<text>'`. */
export function commandForm(rest: string): string[] {
  return jsonArray(rest) ?? ['/bin/sh', '-c', rest];
}

export function jsonArray(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(rest);
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  } catch {
    // SyntaxError, all JSON.parse throws: not JSON, so the Dockerfile takes it as the shell form.
  }
  return undefined;
}

/**
 * `K=V K2="a b"` pairs (words split on unquoted blanks; quotes and backslashes as a shell's), or the
 * legacy `K the rest` when the first word has no `=`.
 */
export function keyValues(rest: string, bad: (why: string) => Error): Array<[string, string]> {
  const first = /^(\S+)\s+([\s\S]*)$/.exec(rest);
  if (first && !first[1]!.includes('=')) return [[first[1]!, first[2]!]];
  const pairs: Array<[string, string]> = [];
  for (const word of words(rest, bad)) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw bad(`${JSON.stringify(word)} is not KEY=value`);
    pairs.push([word.slice(0, eq), word.slice(eq + 1)]);
  }
  return pairs;
}

function words(text: string, bad: (why: string) => Error): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw bad(`unterminated ${quote} quote`);
  if (inWord) out.push(cur);
  return out;
}
