/**
 * The Dockerfile instructions `docker import --change` (and `docker commit --change`) apply to an
 * image's config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR,
 * with the Dockerfile's exec form (a JSON array) and shell form, and its quoting for ENV and LABEL.
 */
import { posix } from 'node:path';
import { ValidationError } from '../../errors.js';
import type { ContainerConfig } from '../registry/manifest.js';

const INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;

/** Applies `changes` in order to a copy of `config`; a change that is not one of the above is a ValidationError. */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const out: ContainerConfig = structuredClone(config);
  for (const change of changes) applyOne(out, change);
  return out;
}

function applyOne(cfg: ContainerConfig, change: string): void {
  const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(change);
  const bad = (why: string) => new ValidationError(`invalid change ${JSON.stringify(change)}: ${why}`, 'changes');
  if (!m) throw bad(`expected an instruction (${INSTRUCTIONS.join(', ')})`);
  const instruction = m[1]!.toUpperCase();
  const rest = (m[2] ?? '').trim();
  if (!(INSTRUCTIONS as readonly string[]).includes(instruction)) throw bad(`${instruction} is not a valid change command (${INSTRUCTIONS.join(', ')})`);
  if (!rest) throw bad(`${instruction} requires an argument`);
  switch (instruction) {
    case 'CMD':
      cfg.Cmd = commandForm(rest);
      break;
    case 'ENTRYPOINT':
      cfg.Entrypoint = commandForm(rest);
      // As in a Dockerfile: a new entrypoint drops the command inherited with the old one.
      cfg.Cmd = null;
      break;
    case 'ENV': {
      const env = [...(cfg.Env ?? [])];
      for (const [k, v] of keyValues(rest, bad)) {
        const i = env.findIndex((e) => e.slice(0, e.indexOf('=')) === k);
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      cfg.Env = env;
      break;
    }
    case 'LABEL':
      cfg.Labels = { ...(cfg.Labels ?? {}), ...Object.fromEntries(keyValues(rest, bad)) };
      break;
    case 'EXPOSE': {
      const ports: NonNullable<typeof cfg.ExposedPorts> = { ...(cfg.ExposedPorts ?? {}) };
      for (const p of rest.split(/\s+/)) {
        const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!pm) throw bad(`${JSON.stringify(p)} is not a port (80, 80/udp, 8000-8002/tcp)`);
        const from = Number(pm[1]);
        const to = pm[2] === undefined ? from : Number(pm[2]);
        if (from < 1 || to > 65535 || to < from || to - from > 1024) throw bad(`${JSON.stringify(p)} is not a port range in 1-65535`);
        for (let n = from; n <= to; n++) ports[`${n}/${(pm[3] ?? 'tcp').toLowerCase()}`] = {};
      }
      cfg.ExposedPorts = ports;
      break;
    }
    case 'VOLUME': {
      const dirs = jsonArray(rest) ?? rest.split(/\s+/);
      cfg.Volumes = { ...(cfg.Volumes ?? {}), ...Object.fromEntries(dirs.map((d) => [d, {}])) };
      break;
    }
    case 'ONBUILD':
      cfg.OnBuild = [...(cfg.OnBuild ?? []), rest];
      break;
    case 'STOPSIGNAL':
      cfg.StopSignal = rest;
      break;
    case 'USER':
      cfg.User = rest;
      break;
    case 'WORKDIR':
      // Relative to the previous one, as in a Dockerfile.
      cfg.WorkingDir = posix.resolve(cfg.WorkingDir || '/', rest);
      break;
  }
}

/** The exec form (`["sh", "-c", "x"]`) as it is; the shell form as `/bin/sh -c '<text>'`. */
function commandForm(rest: string): string[] {
  return jsonArray(rest) ?? ['/bin/sh', '-c', rest];
}

function jsonArray(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(rest);
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  } catch {
    // Not JSON: the Dockerfile takes it as the shell form.
  }
  return undefined;
}

/**
 * `K=V K2="a b"` pairs (words split on unquoted blanks; quotes and backslashes as a shell's), or the
 * legacy `K the rest` when the first word has no `=`.
 */
function keyValues(rest: string, bad: (why: string) => Error): Array<[string, string]> {
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
