/**
 * nsbox build [-t NAME]... [-f FILE] [--build-arg K=V]... [--target STAGE] [--no-cache] [--pull]
 * [--cache-from IMAGE]... [--label K=V]... [--network none|host] [--secret id=ID,src=FILE|env=VAR]... [-q] [--iidfile FILE]
 * [--progress auto|plain|tty|quiet] PATH|-: builds an image from a Dockerfile. `-` reads a tar of
 * the context from stdin, as docker does. The progress: with `auto` (the default), BuildKit's live
 * view of the steps on stderr when stderr is a terminal, else docker's legacy builder output on
 * stdout (`Step 1/3 : FROM busybox`, …, `Successfully built <id>`, `Successfully tagged <name>`);
 * `plain` is BuildKit's `#N [k/n] …` lines on stderr, `tty` its live view, `quiet` (-q) only the id.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildImage } from '../../build/build.js';
import { legacyProgress, shortBuildId } from '../../build/legacy-output.js';
import { plainProgress, type BuildView } from '../../build/plain-progress.js';
import { ttyProgress } from '../../build/tty-progress.js';
import { ValidationError } from '../../errors.js';
import { parseReference } from '../../image/reference.js';
import { flag, parseArgs, value, values } from '../args.js';

function pairs(list: string[], what: string): Record<string, string> {
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
function secretsOf(list: string[]): Record<string, { file: string } | { env: string }> {
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

export default async function buildCommand(argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    [
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
    ],
    { stopAtPositional: false },
  );
  const [ctx, ...extra] = p.positional;
  if (!ctx || extra.length) throw new ValidationError('"nsbox build" requires exactly 1 argument: PATH|-', 'context');
  const tags = values(p, 'tag');
  for (const t of tags) parseReference(t);
  const mode = value(p, 'progress') ?? 'auto';
  if (!['auto', 'plain', 'tty', 'quiet'].includes(mode)) throw new ValidationError(`--progress ${mode}: expected auto, plain, tty or quiet`, 'progress');
  const quiet = flag(p, 'quiet') || mode === 'quiet';
  const view: BuildView | undefined = quiet
    ? undefined
    : mode === 'plain'
      ? plainProgress((s) => process.stderr.write(s))
      : mode === 'tty' || (mode === 'auto' && process.stderr.isTTY)
        ? ttyProgress(process.stderr)
        : undefined;
  const file = value(p, 'file');
  const target = value(p, 'target');
  const network = value(p, 'network');
  const out = legacyProgress((s) => process.stdout.write(s), quiet);
  const building = buildImage({
    context: ctx === '-' ? (process.stdin as AsyncIterable<Uint8Array>) : ctx,
    // -f is a path from here, as docker's CLI reads it; with a context from stdin, a name in it
    ...(file !== undefined ? { dockerfile: ctx === '-' ? file : path.resolve(file) } : {}),
    tags,
    // as docker's CLI does: SOURCE_DATE_EPOCH from the environment is passed as that build arg
    buildArgs: { ...(process.env.SOURCE_DATE_EPOCH ? { SOURCE_DATE_EPOCH: process.env.SOURCE_DATE_EPOCH } : {}), ...pairs(values(p, 'build-arg'), 'build-arg') },
    labels: pairs(values(p, 'label'), 'label'),
    ...(target !== undefined ? { target } : {}),
    noCache: flag(p, 'no-cache'),
    pull: flag(p, 'pull'),
    cacheFrom: values(p, 'cache-from'),
    ...(network !== undefined ? { network } : {}),
    secrets: secretsOf(values(p, 'secret')),
    liveProgress: view !== undefined,
    onProgress:
      view?.onProgress ??
      ((e) => {
        // warnings go to stderr, as docker prints them
        if (e.type === 'warning') process.stderr.write(`${e.message}\n`);
        else out(e);
      }),
  });
  const image = await building.catch((e: unknown) => {
    view?.fail(e instanceof Error ? e : new Error(String(e)));
    throw e;
  });
  const iidfile = value(p, 'iidfile');
  if (iidfile !== undefined) await writeFile(iidfile, image.id);
  if (quiet) process.stdout.write(`${image.id}\n`);
  else if (view) view.done(image.id, tags.map((t) => parseReference(t).toString()));
  else {
    process.stdout.write(`Successfully built ${shortBuildId(image.id)}\n`);
    for (const t of tags) process.stdout.write(`Successfully tagged ${parseReference(t).familiar}\n`);
  }
  return 0;
}
