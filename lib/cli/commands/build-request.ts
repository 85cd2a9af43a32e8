/**
 * What `nsbox build` takes from its arguments (commands/build.ts), shared with the quick build
 * (lib/cli/quick/build.ts): the flags, the build args and secrets as docker's CLI reads them, and
 * the request a build plan is kept for (lib/build/build-plan.ts).
 */
import path from 'node:path';
import type { BuildRequest } from '../../build/build-plan.js';
import { ValidationError } from '../../errors.js';
import { flag, value, values, type FlagSpec, type Parsed } from '../args.js';

export const BUILD_FLAGS: FlagSpec[] = [
      { names: ['tag', 't'], kind: 'list' },
      { names: ['file', 'f'], kind: 'value' },
      { names: ['build-arg'], kind: 'list' },
      { names: ['target'], kind: 'value' },
      { names: ['no-cache'], kind: 'bool' },
      { names: ['pull'], kind: 'bool' },
      { names: ['cache-from'], kind: 'list' },
      { names: ['label'], kind: 'list' },
      { names: ['network'], kind: 'value' },
      { names: ['secret'], kind: 'list' },
      { names: ['quiet', 'q'], kind: 'bool' },
      { names: ['iidfile'], kind: 'value' },
      { names: ['progress'], kind: 'value' },
    ];

export function pairs(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq === 0) throw new ValidationError(`invalid ${what} ${JSON.stringify(kv)}: expected KEY=value`, what);
    // docker: `--build-arg NAME` takes NAME from the environment (skipped when unset)
    if (eq < 0) {
      const v = process.env[kv];
      if (v !== undefined) out[kv] = v;
    } else out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/**
 * `--secret id=ID[,src=FILE|env=VAR][,type=file|env]` as docker's CLI reads it: with neither src
 * nor env, the variable named ID when set, else the file named ID.
 */
export function secretsOf(list: string[]): Record<string, { file: string } | { env: string }> {
  const out: Record<string, { file: string } | { env: string }> = {};
  for (const spec of list) {
    const f = new Map(spec.split(',').map((kv) => [kv.slice(0, kv.indexOf('=') < 0 ? kv.length : kv.indexOf('=')).toLowerCase(), kv.slice(kv.indexOf('=') + 1)]));
    for (const k of f.keys()) if (!['id', 'src', 'source', 'env', 'type'].includes(k)) throw new ValidationError(`--secret ${spec}: unexpected key '${k}' (id, src, env, type)`, 'secret');
    const id = f.get('id');
    if (!id) throw new ValidationError(`--secret ${spec}: an id= is required`, 'secret');
    const src = f.get('src') ?? f.get('source');
    const type = f.get('type') ?? (f.has('env') ? 'env' : src !== undefined ? 'file' : undefined);
    if (type !== undefined && type !== 'file' && type !== 'env') throw new ValidationError(`--secret ${spec}: type=${type}: expected file or env`, 'secret');
    if (type === 'env') out[id] = { env: f.get('env') ?? src ?? id };
    else if (type === 'file') out[id] = { file: path.resolve(src ?? id) };
    else out[id] = process.env[id] !== undefined ? { env: id } : { file: path.resolve(id) };
  }
  return out;
}

/**
 * The request a build plan is kept for, or undefined when the build cannot have one: a context
 * from stdin, a base to pull, cache sources or secrets to read, or a live view (its times are the
 * build's own). --no-cache and -q are not in it: a --no-cache build's records are what the next
 * build hits, and -q only shows less.
 */
export function planRequest(p: Parsed, live: boolean): BuildRequest | undefined {
  const [ctx] = p.positional;
  if (!ctx || ctx === '-' || live || flag(p, 'pull') || values(p, 'cache-from').length || values(p, 'secret').length || /^[a-z][a-z0-9+.-]*:\/\//i.test(ctx)) return undefined;
  const context = path.resolve(ctx);
  const file = value(p, 'file');
  const target = value(p, 'target');
  const network = value(p, 'network');
  return {
    context,
    dockerfile: file !== undefined ? path.resolve(file) : path.join(context, 'Dockerfile'),
    tags: values(p, 'tag'),
    buildArgs: buildArgsOf(p),
    labels: pairs(values(p, 'label'), 'label'),
    ...(target !== undefined ? { target } : {}),
    ...(network !== undefined ? { network } : {}),
  };
}

/** --build-arg, with SOURCE_DATE_EPOCH from the environment passed as that build arg, as docker's CLI does. */
export function buildArgsOf(p: Parsed): Record<string, string> {
  return { ...(process.env.SOURCE_DATE_EPOCH ? { SOURCE_DATE_EPOCH: process.env.SOURCE_DATE_EPOCH } : {}), ...pairs(values(p, 'build-arg'), 'build-arg') };
}
