/**
 * docker-style argument parsing: `-it` (grouped short flags), `-e A=1 -e B=2` (repeated),
 * `--name=web` / `--name web`, and the first positional ending the options (the image, then its
 * command) — as `docker run` reads them.
 */
import { ValidationError } from '../errors.js';

export interface FlagSpec {
  /** Long name without dashes ('name'); aliases such as 'e' for 'env'. */
  names: string[];
  /** A boolean switch, or one taking a value (repeatable ones collect every value). */
  kind: 'bool' | 'value' | 'list';
}

export interface Parsed {
  flags: Map<string, string[] | boolean>;
  positional: string[];
}

/** `--help` given to a command: main prints that command's usage and its flags. */
export class HelpRequested extends Error {
  constructor(readonly specs: FlagSpec[]) {
    super('help requested');
  }
}

/** The flags of a command as docker's help lists them (`-e, --env list`). */
export function describeFlags(specs: FlagSpec[]): string[] {
  const lines = specs.map((s) => {
    const long = s.names.find((n) => n.length > 1);
    const short = s.names.find((n) => n.length === 1);
    const arg = s.kind === 'bool' ? '' : s.kind === 'list' ? ' list' : ' string';
    return `${short ? `-${short}, ` : '    '}${long ? `--${long}` : ''}${arg}`;
  });
  return [...lines, '    --help'].sort((a, b) => a.trim().replace(/^-\w, /, '').localeCompare(b.trim().replace(/^-\w, /, '')));
}

export function parseArgs(argv: string[], specs: FlagSpec[], { stopAtPositional = true } = {}): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) for (const n of s.names) byName.set(n, s);
  const flags = new Map<string, string[] | boolean>();
  const positional: string[] = [];
  const set = (spec: FlagSpec, value: string | true) => {
    const key = spec.names[0]!;
    if (spec.kind === 'bool') flags.set(key, value === true || value !== 'false');
    else if (spec.kind === 'list') flags.set(key, [...((flags.get(key) as string[] | undefined) ?? []), value as string]);
    else flags.set(key, [value as string]);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const spec = byName.get(name);
      if (!spec && name === 'help') throw new HelpRequested(specs);
      if (!spec) throw new ValidationError(`unknown flag: --${name}`, name);
      if (spec.kind === 'bool') set(spec, eq < 0 ? true : a.slice(eq + 1));
      else {
        const v = eq < 0 ? argv[++i] : a.slice(eq + 1);
        if (v === undefined) throw new ValidationError(`flag needs an argument: --${name}`, name);
        set(spec, v);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const spec = byName.get(a[j]!);
        if (!spec) throw new ValidationError(`unknown shorthand flag: '${a[j]}' in ${a}`, a[j]!);
        if (spec.kind === 'bool') {
          set(spec, true);
          continue;
        }
        const rest = a.slice(j + 1);
        const v = rest !== '' ? rest.replace(/^=/, '') : argv[++i];
        if (v === undefined) throw new ValidationError(`flag needs an argument: '${a[j]}' in ${a}`, a[j]!);
        set(spec, v);
        break;
      }
      continue;
    }
    if (stopAtPositional) {
      positional.push(...argv.slice(i));
      break;
    }
    positional.push(a);
  }
  return { flags, positional };
}

export const flag = (p: Parsed, name: string): boolean => p.flags.get(name) === true;
export const value = (p: Parsed, name: string): string | undefined => (p.flags.get(name) as string[] | undefined)?.at(-1);
export const values = (p: Parsed, name: string): string[] => (p.flags.get(name) as string[] | undefined) ?? [];

/** `--filter key=value`s by key. */
export function filterMap(specs: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const s of specs) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ValidationError(`bad format of filter (expected name=value): ${s}`, 'filter');
    m.set(s.slice(0, eq), [...(m.get(s.slice(0, eq)) ?? []), s.slice(eq + 1)]);
  }
  return m;
}
