/**
 * --cache-from through a real registry: a build with BUILDKIT_INLINE_CACHE=1 records each step's
 * cache key in its config; pushed, then the image and the whole local build cache removed (its
 * layers collected), a build with `--cache-from` (CLI) pulls it and takes every step from it: each
 * step says `Using cache`, nothing runs, and the image is the pushed one (same id, same layer
 * digests as the registry's manifest). A changed source misses from its COPY on (SDK).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Image } from '../../lib/image/image.js';
import { registryUnavailable, startRegistry } from '../fixtures/registry.js';
import { bin } from './api-fixture.js';
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

    // an image without the metadata: a warning, the build goes on
    const plain = await build(t, context(t, { Dockerfile: 'FROM busybox\nRUN true\n' }), { cacheFrom: ['busybox'] });
    t.true(plain.events.some((e) => e.type === 'warning' && /no inline cache metadata/.test(e.message)));
  } finally {
    await reg.stop();
  }
});
