/**
 * The Dockerfile's lines into instruction nodes, as BuildKit's parser reads them: parser directives
 * at the top (`# escape=`, `# syntax=` noted and ignored), line continuations with the escape
 * token, comment lines dropped (also inside continued lines), heredocs after RUN, COPY and ADD
 * (`<<EOF`, `<<-EOF`, quoted delimiters), flags (`--from=x`) split off, the exec (JSON) form told
 * from the shell form, instruction words in any case. Variables are expanded later, by the builder,
 * where the reference says they are.
 */
import { ValidationError } from '../../errors.js';
import { jsonArray } from './instruction.js';

export interface Heredoc {
  /** The delimiter word (quotes removed). */
  name: string;
  /** Its lines, each with its newline; with `<<-`, leading tabs removed. */
  content: string;
  /** Unquoted delimiter: variables in the content are expanded (COPY) or left to the shell (RUN). */
  expand: boolean;
  chomp: boolean;
}

export interface DockerfileNode {
  /** The instruction word, upper case. */
  keyword: string;
  /** `--name=value` flags before the arguments, as written (`--from=build`). */
  flags: string[];
  /** The arguments after the flags, continuation lines joined. */
  args: string;
  /** The exec form's words when the arguments are a JSON array of strings. */
  json?: string[];
  heredocs: Heredoc[];
  /** 1-based first and last line in the file. */
  line: number;
  endLine: number;
  /** The instruction as docker echoes it (`RUN echo a`), continuation lines joined. */
  original: string;
}

export interface Dockerfile {
  nodes: DockerfileNode[];
  escape: '\\' | '`';
  /** Things the builder tells the user (an ignored `# syntax=`, empty continuation lines). */
  warnings: string[];
}

const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);

export class DockerfileParseError extends ValidationError {
  readonly line: number;
  constructor(message: string, line: number) {
    super(`Dockerfile:${line}: ${message}`, 'dockerfile');
    this.name = 'DockerfileParseError';
    this.line = line;
  }
}

/** Parses a whole Dockerfile; a DockerfileParseError names the line and what was expected. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/(?<=\n)/);
  const warnings: string[] = [];
  let escape: '\\' | '`' = '\\';
  let i = 0;
  // Directives: only before anything else (an instruction, a blank line or another comment).
  const seen = new Set<string>();
  for (; i < lines.length; i++) {
    const m = /^\s*#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/.exec(trimNewline(lines[i]!));
    if (!m) break;
    const name = m[1]!.toLowerCase();
    if (!['escape', 'syntax', 'check'].includes(name)) break;
    if (seen.has(name)) throw new DockerfileParseError(`only one ${name} parser directive can be used`, i + 1);
    seen.add(name);
    if (name === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw new DockerfileParseError(`invalid escape token '${m[2]}' does not match \` or \\`, i + 1);
      escape = m[2];
    } else if (name === 'syntax') {
      warnings.push(`the syntax directive (${m[2]}) is ignored: nsbox builds with its own Dockerfile frontend`);
    }
  }
  const continuation = escape === '\\' ? /(^|[^\\])\\[ \t]*$/ : /(^|[^\x60])\x60[ \t]*$/;
  const nodes: DockerfileNode[] = [];
  while (i < lines.length) {
    const first = trimNewline(lines[i]!).replace(/^\s+/, '');
    const start = ++i;
    if (first === '' || first.startsWith('#')) continue;
    let buf = '';
    let cur = first;
    let more = continuation.test(cur);
    if (more) cur = cur.replace(continuation, '$1');
    buf = cur;
    let emptyContinuation = false;
    while (more && i < lines.length) {
      const raw = trimNewline(lines[i++]!);
      if (/^\s*#/.test(raw)) continue;
      if (raw.trim() === '') {
        emptyContinuation = true;
        continue;
      }
      more = continuation.test(raw);
      buf += more ? raw.replace(continuation, '$1') : raw;
    }
    if (emptyContinuation) warnings.push(`Dockerfile:${start}: empty continuation line (will become an error in a future docker release)`);
    if (buf.trim() === '') continue;
    const node = splitNode(buf, start, i);
    if (HEREDOC_KEYWORDS.has(node.keyword) && !node.json && node.args.includes('<<')) {
      for (const doc of heredocWords(node.args)) {
        let content = '';
        let done = false;
        while (i < lines.length) {
          const raw = lines[i++]!;
          let candidate = trimNewline(raw);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            done = true;
            break;
          }
          content += raw;
        }
        if (!done) throw new DockerfileParseError(`unterminated heredoc <<${doc.name} (expected a line "${doc.name}")`, start);
        node.heredocs.push({ ...doc, content: doc.chomp ? content.replace(/^\t+/gm, '') : content });
      }
      node.endLine = i;
    }
    nodes.push(node);
  }
  if (nodes.length === 0) throw new DockerfileParseError('file with no instructions', Math.max(lines.length, 1));
  return { nodes, escape, warnings };
}

function trimNewline(s: string): string {
  return s.replace(/\r?\n$/, '').replace(/\r$/, '');
}

/** `RUN --mount=x echo a` → keyword, flags, args; the JSON form recognized. */
export function splitNode(line: string, start: number, end: number): DockerfileNode {
  const m = /^\s*(\S+)\s*([\s\S]*)$/.exec(line);
  if (!m) throw new DockerfileParseError('expected an instruction', start);
  const word = m[1]!;
  if (!/^[A-Za-z]+$/.test(word)) throw new DockerfileParseError(`unknown instruction: ${word}`, start);
  const keyword = word.toUpperCase();
  let rest = m[2]!.replace(/\s+$/, '');
  const flags: string[] = [];
  // ONBUILD's flags belong to the instruction it holds.
  while (keyword !== 'ONBUILD') {
    const f = /^--([A-Za-z][A-Za-z0-9-]*)(=(?:\x22[^\x22]*\x22|\S)*)?(?:\s+|$)/.exec(rest);
    if (!f) break;
    flags.push(f[0].trim());
    rest = rest.slice(f[0].length);
  }
  const json = jsonArray(rest.trim());
  return {
    keyword,
    flags,
    args: rest.trim(),
    ...(json ? { json } : {}),
    heredocs: [],
    line: start,
    endLine: end,
    original: line.trim(),
  };
}

/**
 * The heredoc words of a line (`<<EOF`, `<<-EOF`, `<<'EOF'`, `<<"EOF"`, `2<<EOF`), in order. A
 * delimiter with any quoted part does not expand its content, as in a shell.
 */
export function heredocWords(args: string): Array<Omit<Heredoc, 'content'>> {
  const out: Array<Omit<Heredoc, 'content'>> = [];
  const re = /(?:^|\s)\d*<<(-?)((?:\x22[^\x22\n]*\x22|\x27[^\x27\n]*\x27|[^\s<>|&;()\x27\x22])+)/g;
  for (let m = re.exec(args); m; m = re.exec(args)) {
    const raw = m[2]!;
    const name = raw.replace(/\x22([^\x22]*)\x22|\x27([^\x27]*)\x27/g, (_, a?: string, b?: string) => a ?? b ?? '');
    if (name === '') continue;
    out.push({ name, expand: !/[\x22\x27]/.test(raw), chomp: m[1] === '-' });
  }
  return out;
}
