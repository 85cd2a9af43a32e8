/**
 * COPY's BuildKit flags against the real kernel: --link (a layer made over nothing: new parent
 * directories, a symlink in the image not followed, reused unchanged over a changed parent),
 * --parents (paths kept from the context root or from a `/./`), --exclude (left out of the
 * layer and of the cache key). Each image is run and its layer tars read.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, buildSuite, cachedCount, context, layerEntries, run } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-copy-');

rtest('COPY --link: new parent directories, an image symlink not followed, the layer reused over a changed parent', async (t) => {
  const dir = context(t, {
    'a.txt': 'linked\n',
    'sub/b.txt': 'bee\n',
    Dockerfile: ['FROM busybox', 'ARG V=1', 'RUN mkdir -m 0700 /real /app && ln -s /real /lnk && echo $V > /v', 'WORKDIR /app', 'COPY --link --chown=7:8 a.txt sub ./dst/', 'COPY a.txt /lnk/plain.txt', 'COPY --link a.txt /lnk/', 'RUN cat /v'].join('\n'),
  });
  const one = await build(t, dir, { buildArgs: { V: '1' } });
  t.is(
    await run(t, one.image.digest, ['sh', '-c', 'cat /app/dst/a.txt /app/dst/b.txt; stat -c "%u:%g %a" /app/dst/a.txt /app; test -L /lnk || echo notlink; ls /lnk; echo; ls /real']),
    // /app is the linked layer's new directory (0755, --chown's owner), not the image's 0700 one; /lnk became a directory
    'linked\nbee\n7:8 644\n7:8 755\nnotlink\na.txt\n\nplain.txt\n',
  );
  const layers = one.image.layers;
  const link1 = layers.at(-3)!;
  t.deepEqual(layerEntries(t, link1.digest), ['drwxr-xr-x 7/8 app/', 'drwxr-xr-x 7/8 app/dst/', '-rw-r--r-- 7/8 app/dst/a.txt', '-rw-r--r-- 7/8 app/dst/b.txt']);
  // without --link the copy follows the image's symlink; with it, the layer has a directory there
  t.deepEqual(layerEntries(t, layers.at(-2)!.digest).filter((e) => e.includes('plain')), ['-rw-r--r-- 0/0 real/plain.txt']);
  t.deepEqual(layerEntries(t, layers.at(-1)!.digest), ['drwxr-xr-x 0/0 lnk/', '-rw-r--r-- 0/0 lnk/a.txt']);

  // another parent: the RUN misses, both linked COPYs are cache hits with the same layers; the plain COPY and the RUN after it miss
  const two = await build(t, dir, { buildArgs: { V: '2' } });
  // ARG is cached (same words); the RUN misses, and so does everything after it but the two linked COPYs
  t.is(cachedCount(two.events), 3);
  t.is(two.image.layers.at(-3)!.digest, link1.digest);
  t.is(two.image.layers.at(-1)!.digest, layers.at(-1)!.digest);
  t.not(two.image.layers.at(-4)!.digest, layers.at(-4)!.digest, 'the RUN layer changed');
  t.not(two.image.layers.at(-3)!.chainId, link1.chainId, 'rebased on the new parent');
  t.is(await run(t, two.image.digest, ['sh', '-c', 'cat /v /app/dst/a.txt']), '2\nlinked\n');
});

rtest('COPY --parents: paths kept from the context root, or from a /./ on; the directories on the way copied with their modes', async (t) => {
  const dir = context(t, {
    'x/a.txt': 'xa\n',
    'y/a.txt': 'ya\n',
    'src/pkg/b.txt': 'b\n',
    'src/pkg/c.md': 'c\n',
    'd/e/f.txt': 'f\n',
    Dockerfile: ['FROM busybox', 'COPY --parents x/a.txt ./y/a.txt /p/', 'COPY --parents ./src/./pkg/*.txt /q', 'COPY --parents d /r/', 'COPY x/a.txt y/a.txt /flat/'].join('\n'),
  });
  chmodSync(join(dir, 'x'), 0o750);
  const { image } = await build(t, dir);
  t.is(await run(t, image.digest, ['sh', '-c', 'cd / && find p q r flat -type f | sort | xargs -n1 sh -c \'echo "$0 $(cat $0)"\'; stat -c %a /p/x /p/y']), 'flat/a.txt ya\np/x/a.txt xa\np/y/a.txt ya\nq/pkg/b.txt b\nr/d/e/f.txt f\n750\n755\n');
  t.deepEqual(layerEntries(t, image.layers[2]!.digest), ['drwxr-xr-x 0/0 q/', 'drwxr-xr-x 0/0 q/pkg/', '-rw-r--r-- 0/0 q/pkg/b.txt']);
});

rtest('COPY/ADD --exclude: matched paths are not copied and not in the cache key', async (t) => {
  const dir = context(t, {
    'app/keep.js': 'k\n',
    'app/skip.txt': 's\n',
    'app/node_modules/m.js': 'm\n',
    'app/sub/deep.txt': 'd\n',
    'home1.txt': '1\n',
    'home2.js': '2\n',
    Dockerfile: ['FROM busybox', 'COPY --exclude=*.txt --exclude=node_modules app /a/', 'ADD --exclude=*.txt home* /h/', 'RUN find /a /h | sort'].join('\n'),
  });
  const one = await build(t, dir);
  t.is(one.out, '/a\n/a/keep.js\n/a/sub\n/a/sub/deep.txt\n/h\n/h/home2.js\n');
  t.deepEqual(layerEntries(t, one.image.layers[1]!.digest).map((e) => e.split(' ').at(-1)), ['a/', 'a/keep.js', 'a/sub/', 'a/sub/deep.txt']);
  // an excluded file changed: all cached; a copied one changed: that COPY misses
  writeFileSync(join(dir, 'app/skip.txt'), 'changed\n');
  writeFileSync(join(dir, 'home1.txt'), 'changed\n');
  const two = await build(t, dir);
  t.is(cachedCount(two.events), 3);
  t.is(two.image.digest, one.image.digest);
  writeFileSync(join(dir, 'app/keep.js'), 'changed\n');
  const three = await build(t, dir);
  t.is(cachedCount(three.events), 0);
  t.is(await run(t, three.image.digest, ['cat', '/a/keep.js']), 'changed\n');
});
