import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { NotFoundError } from '../../lib/errors.js';
import { chainIds, Store, type ImageRecordInput } from '../../lib/storage/index.js';
import { sha256, tarball } from '../fixtures/storage-tar.js';

const storeModule = fileURLToPath(new URL('../../lib/storage/index.ts', import.meta.url));

async function open(t: { teardown(fn: () => void): void }): Promise<Store> {
  const root = mkdtempSync(path.join(tmpdir(), 'nsbox-images-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return Store.open({ root });
}

/** Puts an image with `layers` (one file each) into the store the way a pull would. */
async function addImage(s: Store, tag: string, layers: string[]): Promise<ImageRecordInput> {
  const tars = layers.map((name) => tarball([{ name, data: name }]));
  const diffIds = tars.map(sha256);
  const ids = chainIds(diffIds);
  const recLayers = [];
  for (const [i, tar] of tars.entries()) {
    const d = sha256(tar);
    const b = await s.blobs.ingest(tar, d);
    await s.layers.unpack(ids[i]!, b.path, { diffId: diffIds[i]!, ...(i ? { parentChainId: ids[i - 1]! } : {}), preserveOwners: false });
    recLayers.push({ digest: d, mediaType: 'application/vnd.oci.image.layer.v1.tar', size: tar.length, diffId: diffIds[i]!, chainId: ids[i]! });
  }
  const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: diffIds }, tag }));
  await s.blobs.ingest(config, sha256(config));
  const manifest = Buffer.from(JSON.stringify({ config: sha256(config), layers: recLayers.map((l) => l.digest) }));
  await s.blobs.ingest(manifest, sha256(manifest));
  const record = { digest: sha256(manifest), mediaType: 'application/vnd.oci.image.manifest.v1+json', config: sha256(config), layers: recLayers, addedAt: new Date().toISOString() };
  await s.images.put(record, [tag]);
  return record;
}

test('records: put, get by name or digest, tag, untag, list, remove', async (t) => {
  const s = await open(t);
  const rec = await addImage(s, 'docker.io/library/a:1', ['base', 'app']);
  const got = await s.images.get('docker.io/library/a:1');
  t.is(got?.record.digest, rec.digest);
  t.deepEqual(got?.names, ['docker.io/library/a:1']);
  t.deepEqual((await s.images.get(rec.digest))?.record.config, rec.config);
  t.is((await s.images.get(rec.config))?.record.digest, rec.digest, "by docker's image id, the config's digest");
  await s.images.tag('docker.io/library/a:latest', rec.digest);
  t.deepEqual((await s.images.get(rec.digest))?.names, ['docker.io/library/a:1', 'docker.io/library/a:latest']);
  await t.throwsAsync(s.images.tag('x:1', sha256(Buffer.from('none'))), { instanceOf: NotFoundError });
  t.is(await s.images.untag('docker.io/library/a:1'), rec.digest);
  t.is(await s.images.untag('docker.io/library/a:1'), undefined);
  t.is((await s.images.list()).length, 1);
  t.deepEqual(await s.images.references(rec.config), [rec.digest]);
  t.deepEqual(await s.images.references(rec.layers[1]!.chainId), [rec.digest]);
  t.deepEqual(await s.images.remove(rec.digest), ['docker.io/library/a:latest']);
  t.is(await s.images.get(rec.digest), undefined);
  await t.throwsAsync(s.images.remove(rec.digest), { instanceOf: NotFoundError });
});

test('gc: shared layers and blobs stay while an image uses them; what containers use stays', async (t) => {
  const s = await open(t);
  const a = await addImage(s, 'a:1', ['base', 'a']);
  const b = await addImage(s, 'b:1', ['base', 'b']);
  t.is(a.layers[0]!.chainId, b.layers[0]!.chainId);
  t.deepEqual(await s.images.gc(), { blobs: [], layers: [] });
  await s.images.remove(a.digest);
  const r1 = await s.images.gc(() => ({ layers: [] }));
  t.deepEqual(r1.layers, [a.layers[1]!.chainId]);
  t.deepEqual(r1.blobs.sort(), [a.digest, a.config, a.layers[1]!.digest].sort());
  t.true(await s.layers.has(b.layers[0]!.chainId));
  await s.images.remove(b.digest);
  // a container made from b still runs on its layers
  const r2 = await s.images.gc(() => ({ layers: [b.layers[1]!.chainId], blobs: [b.config] }));
  t.deepEqual(r2.layers, []);
  t.true((await s.blobs.list()).includes(b.config));
  const r3 = await s.images.gc();
  t.is(r3.layers.length, 2);
  t.deepEqual(await s.blobs.list(), []);
  t.deepEqual(readdirSync(s.layout.layersDir), []);
});

test('two processes writing records at once lose nothing', async (t) => {
  const s = await open(t);
  const digest = sha256(Buffer.from('manifest'));
  const record = { digest, mediaType: 'm', config: digest, layers: [], addedAt: 'now' };
  await s.images.put(record, []);
  const code = (who: string) => `
    import { Store } from ${JSON.stringify(storeModule)};
    const s = new Store({ root: ${JSON.stringify(s.layout.root)} });
    for (let i = 0; i < 25; i++) await s.images.tag('${who}:' + i, ${JSON.stringify(digest)});`;
  const run = (who: string) =>
    new Promise<number | null>((resolve) => {
      const c = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code(who)], { stdio: 'inherit' });
      t.teardown(() => {
        if (c.exitCode === null) c.kill();
      });
      c.once('exit', resolve);
    });
  const [x, y] = await Promise.all([run('x'), run('y'), (async () => {
    for (let i = 0; i < 25; i++) await s.images.tag(`z:${i}`, digest);
  })()]);
  t.is(x, 0);
  t.is(y, 0);
  t.is((await s.images.get(digest))?.names.length, 75);
});

test('a corrupt images.json is reported, not silently reset', async (t) => {
  const s = await open(t);
  writeFileSync(s.layout.imagesFile, '{"version": 2}');
  await t.throwsAsync(s.images.list(), { code: 'ERR_STORE_CORRUPT' });
});
