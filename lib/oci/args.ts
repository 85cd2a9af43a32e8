/**
 * runc's command line as urfave/cli reads it: global flags, the command, its flags (`--f v`,
 * `--f=v`, `-f v`; repeatable ones collect), then the positional arguments. Flags after the first
 * positional belong to the positionals (exec's command line).
 */
import { ValidationError } from '../errors.js';

export interface FlagSpec {
  /** Long name without dashes, then short aliases. */
  names: string[];
  value: boolean;
  repeat?: boolean;
}

export interface Parsed {
  flags: Map<string, string[]>;
  rest: string[];
}

export function parseFlags(argv: string[], specs: FlagSpec[], stopAtPositional = true): Parsed {
  const flags = new Map<string, string[]>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      if (stopAtPositional) {
        rest.push(...argv.slice(i));
        break;
      }
      rest.push(a);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = specs.find((s) => s.names.includes(name));
    if (!spec) throw new ValidationError(`flag provided but not defined: -${name}`, name);
    const key = spec.names[0]!;
    let value: string;
    if (!spec.value) value = eq >= 0 ? body.slice(eq + 1) : 'true';
    else if (eq >= 0) value = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new ValidationError(`flag needs an argument: -${name}`, name);
      value = argv[++i]!;
    }
    const list = flags.get(key) ?? [];
    if (!spec.repeat) list.length = 0;
    list.push(value);
    flags.set(key, list);
  }
  return { flags, rest };
}

export const flag = (p: Parsed, name: string): string | undefined => p.flags.get(name)?.at(-1);
export const bool = (p: Parsed, name: string): boolean => {
  const v = flag(p, name);
  return v !== undefined && v !== 'false';
};
export const list = (p: Parsed, name: string): string[] => p.flags.get(name) ?? [];

export const v = (...names: string[]): FlagSpec => ({ names, value: true });
export const b = (...names: string[]): FlagSpec => ({ names, value: false });
export const r = (...names: string[]): FlagSpec => ({ names, value: true, repeat: true });
