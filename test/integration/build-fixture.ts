/**
 * What the builder's integration tests share: a temp store with the busybox fixture imported as
 * `busybox`, contexts written from a name → text map, a build that records its progress events,
 * a run of the result, and a layer blob's entries as `tar -tv` lists them.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Container } from '../../lib/container.js';
import { buildImage, type BuildOptions, type BuildProgress } from '../../lib/build/index.js';
import { Image } from '../../lib/image/image.js';
import { collect, isRoot, rootfs, skipIf } from './_helpers.js';

export interface BuildCtx {
  dir: string;
  root: string;
}

/** The serial root test function, with the store made before and removed after. */
export function buildSuite(prefix: string) {
  const test = anyTest as TestFn<BuildCtx>;
  test.before(async (t) => {
    if (!isRoot) return;
    t.context.dir = mkdtempSync(join(tmpdir(), prefix));
    t.context.root = join(t.context.dir, 'root');
    const tar = join(t.context.dir, 'rootfs.tar');
    const r = spawnSync('tar', ['-C', rootfs(), '-cf', tar, '.']);
    if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
    await Image.import(tar, { name: 'busybox', root: t.context.root });
  });
  test.after.always((t) => {
    if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
  });
  return skipIf(isRoot ? undefined : 'needs root', test.serial);
}

let n = 0;
/** A context directory with `files` (a name ending in `/` is an empty directory). */
export function context(t: { context: BuildCtx }, files: Record<string, string>): string {
  const dir = join(t.context.dir, `ctx-${++n}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    if (name.endsWith('/')) {
      mkdirSync(join(dir, name), { recursive: true });
      continue;
    }
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

export async function build(t: { context: BuildCtx }, dir: string, opts: Partial<BuildOptions> = {}): Promise<{ image: Image; events: BuildProgress[]; out: string }> {
  const events: BuildProgress[] = [];
  const image = await buildImage({ context: dir, root: t.context.root, ...opts, onProgress: (e) => events.push(e) });
  const out = events.filter((e) => e.type === 'output').map((e) => (e as { data: Buffer }).data.toString()).join('');
  return { image, events, out };
}

/** A container of `image` run to its end (its own command when `command` is absent): its output and exit code. */
export async function runImage(t: { context: BuildCtx }, image: string, command?: string[]): Promise<{ stdout: string; stderr: string; exitCode: number | null }> {
  const c = await Container.run({ image, imageRoot: t.context.root, pull: 'never', ...(command ? { command } : {}) });
  try {
    const [stdout, stderr, status] = await Promise.all([collect(c.stdout), collect(c.stderr), c.wait()]);
    return { stdout, stderr, exitCode: status.exitCode };
  } finally {
    await c.remove();
  }
}

/** The command's stdout in a container of `image`; it must exit 0. */
export async function run(t: ExecutionContext<BuildCtx>, image: string, command: string[]): Promise<string> {
  const r = await runImage(t, image, command);
  t.is(r.exitCode, 0, r.stderr);
  return r.stdout;
}

/** `tar -tv` of a layer blob: "mode uid/gid name[ -> target]" lines. */
export function layerEntries(t: { context: BuildCtx }, digest: string): string[] {
  const r = spawnSync('tar', ['--numeric-owner', '-tvf', join(t.context.root, 'blobs', 'sha256', digest.slice(7))], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => {
    const f = l.split(/\s+/);
    return `${f[0]} ${f[1]} ${f.slice(5).join(' ')}`;
  });
}

export const cachedCount = (events: BuildProgress[]) => events.filter((e) => e.type === 'cached').length;
