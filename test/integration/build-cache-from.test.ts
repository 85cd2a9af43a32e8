/**
 * --cache-from through a real registry: a build with BUILDKIT_INLINE_CACHE=1 records each step's
 * cache key in its config; pushed, then the image and the whole local build cache removed (its
 * layers collected), a build with `--cache-from` (CLI) pulls it and takes every step from it: each
 * step says `Using cache`, nothing runs, and the image is the pushed one (same id, same layer
 * digests as the registry's manifest). A changed source misses from its COPY on (SDK).
 * Without the metadata, steps are matched by the image's history (created_by and the layer chain,
 * as docker's classic builder does): through the registry (SDK), and through `docker build
 * --cache-from` against `nsbox serve` (the Engine API's `cachefrom`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Image } from '../../lib/image/image.js';
import { registryUnavailable, startRegistry } from '../fixtures/registry.js';
import { apiUnavailable, bin, cleanup, docker, startServe } from './api-fixture.js';
import { build, buildSuite, cachedCount, context, run } from './build-fixture.js';
import { skipIf } from './_helpers.js';

const rtest = skipIf(registryUnavailable(), buildSuite('nsbox-build-cache-from-'));

function nsbox(root: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: root } });
}

rtest('build with inline cache, push, wipe the cache, build --cache-from: every step CACHED, the same image and layer digests', async (t) => {
  const reg = await startRegistry();
  try {
    const ref = `${reg.host}/app:1`;
    const dir = context(t, {
      'a.txt': 'one\n',
      Dockerfile: ['FROM busybox', 'COPY a.txt /a.txt', 'RUN cat /a.txt > /b && date +%N > /made', 'ENV X=1', 'RUN echo $X > /x', 'CMD ["cat", "/b"]'].join('\n'),
    });
    const inline = { BUILDKIT_INLINE_CACHE: '1' };
    const first = await build(t, dir, { tags: [ref], buildArgs: inline });
    t.truthy(first.image.config['io.nsbox.build.cache.v0'], 'the inline cache metadata is in the config');
    const made = await run(t, ref, ['cat', '/made']);
    const pushed = await Image.push(ref, { root: t.context.root });
    const diffIds = first.image.config.rootfs.diff_ids;

    // nothing of it left here: no image, no cache records, no layers of its steps
    await Image.remove(ref, { root: t.context.root, forget: true });
    const prune = nsbox(t.context.root, ['builder', 'prune', '-f', '--all']);
    t.is(prune.status, 0, prune.stderr);
    for (const l of first.image.layers.slice(1)) t.false(existsSync(join(t.context.root, 'layers', l.chainId.slice(7))), `layer ${l.chainId.slice(7, 19)} collected`);

    const r = nsbox(t.context.root, ['build', '--cache-from', ref, '--build-arg', 'BUILDKIT_INLINE_CACHE=1', '-t', 'again:1', dir]);
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout.match(/ ---> Using cache/g)?.length, 5, r.stdout);
    t.notRegex(r.stdout, /Running in/);
    const again = await Image.get('again:1', { root: t.context.root });
    t.is(again.id, first.image.id, 'the same image');
    t.deepEqual(again.config.rootfs.diff_ids, diffIds);
    // the steps' layers are the registry's (the base is the store's own busybox, as in the first build)
    const pulled = await Image.get(ref, { root: t.context.root });
    t.deepEqual(again.layers.slice(1).map((l) => l.digest), pulled.layers.slice(1).map((l) => l.digest), "the registry's layers");
    t.deepEqual(again.layers.slice(1).map((l) => l.digest), pushed.layers.slice(1).map((l) => l.digest), 'the digests the push gave');
    t.is(again.layers.length, diffIds.length);
    t.is(await run(t, 'again:1', ['cat', '/made']), made, 'the RUN did not run again');

    // a changed source: the COPY and all after it are built
    writeFileSync(join(dir, 'a.txt'), 'two\n');
    const changed = await build(t, dir, { cacheFrom: [ref] });
    t.is(cachedCount(changed.events), 0);
    t.is(await run(t, changed.image.digest, ['cat', '/b']), 'two\n');

    // an image without the metadata, pulled: matched by its history; the COPY is made and has the image's layer
    const ref2 = `${reg.host}/plain:1`;
    writeFileSync(join(dir, 'a.txt'), 'three\n');
    const noMeta = await build(t, dir, { tags: [ref2] });
    t.is(noMeta.image.config['io.nsbox.build.cache.v0'], undefined);
    const made2 = await run(t, ref2, ['cat', '/made']);
    await Image.push(ref2, { root: t.context.root });
    await Image.remove(ref2, { root: t.context.root, forget: true });
    t.is(nsbox(t.context.root, ['builder', 'prune', '-f', '--all']).status, 0);
    const byHistory = await build(t, dir, { cacheFrom: [ref2] });
    t.is(cachedCount(byHistory.events), 4, 'RUN, ENV, RUN, CMD from the history; the COPY made');
    t.false(byHistory.events.some((e) => e.type === 'running'), 'no RUN ran');
    t.is(byHistory.image.id, noMeta.image.id, 'the same image');
    t.is(await run(t, byHistory.image.digest, ['cat', '/made']), made2);
    // the entries are this store's now: the next build hits without --cache-from
    t.is(cachedCount((await build(t, dir)).events), 5);
  } finally {
    await reg.stop();
  }
});

const dockerTest = skipIf(apiUnavailable({ docker: true }), rtest);

dockerTest('docker build --cache-from through nsbox serve: an image with no cache metadata, after the build cache is pruned, matched by its history (a COPY and a COPY --link made and matched by their layers)', async (t) => {
  const serve = await startServe({ root: t.context.root });
  t.teardown(() => cleanup(serve));
  const dir = context(t, { 'a.txt': 'one\n', Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\nCOPY --link a.txt /l.txt\nRUN date +%N > /made\nRUN cat /a.txt /made > /both\nCMD ["cat", "/both"]\n' });
  const first = docker(serve, ['build', '-t', 'hist:1', dir], { timeout: 120_000 });
  t.is(first.status, 0, first.stderr);
  const id = (ref: string) => docker(serve, ['image', 'inspect', '--format', '{{.Id}}', ref]).stdout.trim();
  t.is(nsbox(t.context.root, ['builder', 'prune', '-f', '--all']).status, 0);
  const again = docker(serve, ['build', '--cache-from', 'hist:1', '-t', 'hist:2', dir], { timeout: 120_000 });
  t.is(again.status, 0, again.stderr);
  t.regex(again.stdout, /Step 4\/6 : RUN date \+%N > \/made\n ---> Using cache\n/, again.stdout);
  t.is(again.stdout.match(/ ---> Using cache/g)?.length, 3, again.stdout);
  t.notRegex(again.stdout, /Running in/);
  t.is(id('hist:2'), id('hist:1'));
  // without it (the cache pruned again), the RUNs run
  t.is(nsbox(t.context.root, ['builder', 'prune', '-f', '--all']).status, 0);
  const cold = docker(serve, ['build', '-t', 'hist:3', dir], { timeout: 120_000 });
  t.regex(cold.stdout, /Running in/);
  t.not(id('hist:3'), id('hist:1'));
});
