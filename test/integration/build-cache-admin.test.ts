/**
 * The build cache as something to look at and free: it outlives the images built with it (an
 * rmi's garbage collection keeps its layers), `nsbox builder prune` (dangling, --all,
 * --keep-storage) removes its records and then their layers, `nsbox system prune` includes it,
 * `nsbox system df` and `GET /system/df` show it (docker's BuildCache shape), `POST /build/prune`
 * frees it, and the docker CLI reads both through `nsbox serve`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Image } from '../../lib/image/image.js';
import { buildCacheUsage } from '../../lib/build/index.js';
import { apiUnavailable, bin, cleanup, docker, request, startServe } from './api-fixture.js';
import { skipIf } from './_helpers.js';
import { build, buildSuite, cachedCount, context, run } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-cache-');

function nsbox(t: { context: { root: string } }, args: string[]): string {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.root } });
  if (r.status !== 0) throw new Error(`nsbox ${args.join(' ')}: ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const records = (root: string) => (existsSync(join(root, 'build-cache')) ? readdirSync(join(root, 'build-cache')).filter((n) => n.endsWith('.json')).length : 0);
const layerDir = (root: string, chainId: string) => join(root, 'layers', chainId.slice(7));

rtest('the cache outlives rmi; builder prune frees what no image shares, then --all; system df shows it', async (t) => {
  const dir = context(t, { 'big.bin': 'a'.repeat(300_000), Dockerfile: 'FROM busybox\nCOPY big.bin /\nRUN echo one > /one\n' });
  const first = await build(t, dir, { tags: ['kept:1'] });
  const firstCopy = first.image.layers[1]!;
  // the same steps over another big.bin: the first image's COPY and RUN records are no image's now
  writeFileSync(join(dir, 'big.bin'), 'b'.repeat(200_000));
  const second = await build(t, dir, { tags: ['kept:1'] });
  await Image.remove(first.image.digest, { root: t.context.root, forget: true });
  t.true(existsSync(layerDir(t.context.root, firstCopy.chainId)), 'rmi left the layer the cache holds');

  const usage = await buildCacheUsage(t.context.root);
  const dangling = usage.filter((u) => !u.shared && u.size > 0);
  t.deepEqual(dangling.map((d) => d.size).sort((a, b) => a - b), [4, 300_000], 'the old COPY (300 kB) and RUN (4 bytes) layers');
  t.true(usage.some((u) => u.shared && u.size === 200_000), 'the current COPY is shared with kept:1');
  t.regex(nsbox(t, ['system', 'df']), /^Build Cache\s+\d+\s+0\s+300kB\s+300kB \(100%\)$/m);
  t.regex(nsbox(t, ['system', 'df', '-v']), /CACHE ID\s+CACHE TYPE\s+SIZE/);

  // a rebuild of the first content after the rmi: all from the cache
  writeFileSync(join(dir, 'big.bin'), 'a'.repeat(300_000));
  const again = await build(t, dir);
  t.is(cachedCount(again.events), 2);
  t.is(again.image.id, first.image.id);
  await Image.remove(again.image.digest, { root: t.context.root });

  const before = records(t.context.root);
  const out = nsbox(t, ['builder', 'prune', '-f']);
  t.regex(out, /^Deleted build cache objects:\n([0-9a-f]{25}\n)+\nTotal reclaimed space: 300kB\n$/);
  t.is(records(t.context.root), before - (out.trim().split('\n').length - 3));
  t.false(existsSync(layerDir(t.context.root, firstCopy.chainId)), 'its layer collected');
  t.true(existsSync(layerDir(t.context.root, second.image.layers[1]!.chainId)), "the image's layer kept");
  t.is(await run(t, 'kept:1', ['wc', '-c', '/big.bin']), '200000 /big.bin\n');
  // what an image shares stays: its rebuild is all cached
  writeFileSync(join(dir, 'big.bin'), 'b'.repeat(200_000));
  t.is(cachedCount((await build(t, dir)).events), 2);
  t.is(await run(t, 'kept:1', ['cat', '/one']), 'one\n');

  t.regex(nsbox(t, ['builder', 'prune', '-f', '--all']), /^Deleted build cache objects:\n/);
  t.is(records(t.context.root), 0);
  t.is(cachedCount((await build(t, dir)).events), 0, 'nothing cached after --all');
});

rtest('builder prune --keep-storage removes the least recently used first; system prune includes the cache; cache mounts are records too', async (t) => {
  nsbox(t, ['builder', 'prune', '-f', '--all']);
  const old = await build(t, context(t, { 'f.bin': 'o'.repeat(100_000), Dockerfile: 'FROM busybox\nCOPY f.bin /old.bin\n' }));
  const recent = await build(t, context(t, { 'f.bin': 'r'.repeat(100_000), Dockerfile: 'FROM busybox\nCOPY f.bin /recent.bin\n' }));
  await Image.remove(old.image.digest, { root: t.context.root });
  await Image.remove(recent.image.digest, { root: t.context.root });
  // the first was used an hour ago
  const hour = new Date(Date.now() - 3600_000);
  for (const u of await buildCacheUsage(t.context.root)) if (u.description.includes('/old.bin')) utimesSync(join(t.context.root, 'build-cache', `${u.id}.json`), hour, hour);
  const out = nsbox(t, ['builder', 'prune', '-f', '--keep-storage', '150k']);
  t.regex(out, /Total reclaimed space: 100kB/);
  t.false(existsSync(layerDir(t.context.root, old.image.layers[1]!.chainId)));
  t.true(existsSync(layerDir(t.context.root, recent.image.layers[1]!.chainId)));

  await build(t, context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c echo 12345 > /c/x\n' }));
  const mounts = (await buildCacheUsage(t.context.root)).filter((u) => u.type === 'exec.cachemount');
  t.deepEqual(mounts.map((m) => m.size), [6]);
  const sys = nsbox(t, ['system', 'prune', '-f']);
  t.regex(sys, new RegExp(`Deleted build cache objects:\\n(?:[0-9a-f]{25}\\n)*${mounts[0]!.id.slice(0, 25)}\\n`));
  t.deepEqual((await buildCacheUsage(t.context.root)).filter((u) => !u.shared && u.size > 0), []);
  t.false(existsSync(join(t.context.root, 'build-cache-mounts', mounts[0]!.id)));
});

skipIf(apiUnavailable({ docker: true }), rtest)('GET /system/df and POST /build/prune in docker\'s shapes; docker system df and docker builder prune through nsbox serve', async (t) => {
  const serve = await startServe({ root: t.context.root });
  try {
    const one = await build(t, context(t, { 'f.bin': 'x'.repeat(50_000), Dockerfile: 'FROM busybox\nCOPY f.bin /\n' }), { tags: ['dfimage:1'] });
    await Image.remove('dfimage:1', { root: t.context.root });
    const df = await request(serve.socket, 'GET', '/v1.41/system/df');
    t.is(df.status, 200);
    const cache = df.json.BuildCache.find((c: { Size: number }) => c.Size === 50_000);
    t.like(cache, { Type: 'regular', Shared: false, InUse: false });
    t.regex(cache.ID, /^[0-9a-f]{25}$/);
    t.true(typeof cache.LastUsedAt === 'string' && typeof df.json.LayersSize === 'number');
    t.true(Array.isArray(df.json.Images) && Array.isArray(df.json.Containers) && Array.isArray(df.json.Volumes));
    const d = docker(serve, ['system', 'df']);
    t.is(d.status, 0, d.stderr);
    t.regex(d.stdout, /^Build Cache\s+\d+\s+0\s+50kB\s+50kB$/m);
    const pr = await request(serve.socket, 'POST', '/v1.41/build/prune');
    t.is(pr.status, 200);
    t.true(pr.json.CachesDeleted.includes(cache.ID) || pr.json.CachesDeleted.some((id: string) => cache.ID.startsWith(id.slice(0, 25))));
    t.is(pr.json.SpaceReclaimed, 50_000);
    t.false(existsSync(layerDir(t.context.root, one.image.layers[1]!.chainId)));
    const bp = docker(serve, ['builder', 'prune', '-f']);
    t.is(bp.status, 0, bp.stderr);
    t.regex(bp.stdout, /Total reclaimed space: 0B/);
  } finally {
    await cleanup(serve);
  }
});
