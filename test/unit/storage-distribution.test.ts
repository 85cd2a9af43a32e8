/**
 * DistributionStore: a layer's compressed blob is remembered in a file of its own, so forgetting
 * the registries' repositories (distribution.json) does not make the next push gzip the layer again;
 * a record kept in distribution.json by an older nsbox is still found.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { DistributionStore, StoreLayout } from '../../lib/storage/index.js';

const diffId = `sha256:${'a'.repeat(64)}`;
const gz = { digest: `sha256:${'b'.repeat(64)}`, size: 123, compression: 'gzip' as const };

function store(t: { teardown(fn: () => void): void }): DistributionStore {
  const root = mkdtempSync(path.join(tmpdir(), 'nsbox-distribution-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return new DistributionStore(new StoreLayout(root));
}

test('the compressed blob of a layer outlives the repositories record', async (t) => {
  const d = store(t);
  t.is(d.compressed(diffId), undefined);
  await d.setCompressed(diffId, gz);
  await d.addRepository('127.0.0.1:5000/app', [gz.digest]);
  t.deepEqual(await d.repositoriesOf(gz.digest), ['127.0.0.1:5000/app']);
  rmSync(d.layout.distributionFile);
  t.deepEqual(await d.repositoriesOf(gz.digest), []);
  t.deepEqual(d.compressed(diffId), gz);
});

test('a compressed blob recorded in distribution.json (older stores) is still found', async (t) => {
  const d = store(t);
  writeFileSync(d.layout.distributionFile, JSON.stringify({ version: 1, compressed: { [diffId]: gz }, repositories: {} }));
  t.deepEqual(d.compressed(diffId), gz);
  await d.addRepository('127.0.0.1:5000/app', [gz.digest]);
  t.deepEqual(d.compressed(diffId), gz);
});

test('a damaged compressed-blob record is reported, not taken as absent', async (t) => {
  const d = store(t);
  await d.setCompressed(diffId, gz);
  writeFileSync(d.layout.compressedRecord(diffId), JSON.stringify({ digest: 'nope' }));
  const err = t.throws(() => d.compressed(diffId));
  t.is((err as { code?: string }).code, 'ERR_STORE_CORRUPT');
});

test('the repositories record is a cache: one write for several repositories; left empty or cut short by a crash, it knows nothing', async (t) => {
  const d = store(t);
  await d.addRepositories(new Map<string, Iterable<string>>([['127.0.0.1:5000/a', [gz.digest]], ['127.0.0.1:5000/b', new Set([gz.digest, diffId])]]));
  const snap = d.snapshot();
  t.deepEqual(snap.repositoriesOf(gz.digest), ['127.0.0.1:5000/b', '127.0.0.1:5000/a']);
  t.deepEqual(snap.repositoriesOf(diffId), ['127.0.0.1:5000/b']);
  await d.setManifestFormat('127.0.0.1:5000', 'docker');
  t.is(snap.manifestFormat('127.0.0.1:5000'), undefined, 'a snapshot does not see later writes');
  t.is(d.snapshot().manifestFormat('127.0.0.1:5000'), 'docker');
  for (const text of ['', '{"version":1,"repositories":{"sha']) {
    writeFileSync(d.layout.distributionFile, text);
    t.deepEqual(await d.repositoriesOf(gz.digest), []);
    await d.addRepository('127.0.0.1:5000/c', [gz.digest]);
    t.deepEqual(await d.repositoriesOf(gz.digest), ['127.0.0.1:5000/c']);
  }
  writeFileSync(d.layout.distributionFile, JSON.stringify({ version: 2 }));
  t.is(((await t.throwsAsync(d.repositoriesOf(gz.digest))) as { code?: string }).code, 'ERR_STORE_CORRUPT', 'a whole record of another shape is still reported');
});
