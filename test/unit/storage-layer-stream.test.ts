/**
 * LayerStore.stream: a layer unpacked from its compressed bytes as they arrive (what a pull feeds it
 * from the download), published only after verify() and commit(), and gone after any failure.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { DigestMismatchError as TheDigestMismatchError } from '../../lib/errors.js';
import { DigestMismatchError, LayerError, LayerStore, StoreLayout } from '../../lib/storage/index.js';
import { gzipTar, sha256, tarball, type RawEntry } from '../fixtures/storage-tar.js';

function store(t: { teardown(fn: () => void): void }): LayerStore {
  const root = mkdtempSync(path.join(tmpdir(), 'nsbox-layer-stream-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return new LayerStore(new StoreLayout(root));
}

const files: RawEntry[] = [
  { name: './', type: '5', mode: 0o755 },
  { name: './etc/', type: '5', mode: 0o755 },
  { name: './etc/hostname', data: 'box\n', mode: 0o644 },
  { name: './big', data: Buffer.alloc(3 << 20, 7), mode: 0o600 },
];

/** Feeds `bytes` in pieces of `size`, waiting when the stream asks to. */
async function feed(s: { write(c: Buffer): void | Promise<void> }, bytes: Buffer, size = 4096): Promise<void> {
  for (let at = 0; at < bytes.length; at += size) await s.write(bytes.subarray(at, at + size));
}

test('fed piece by piece: nothing under the layer name until commit, then the whole layer', async (t) => {
  const s = store(t);
  const tar = tarball(files);
  const diffId = sha256(tar);
  const stream = s.stream(diffId, { diffId, preserveOwners: false });
  await feed(stream, gzipTar(files));
  await stream.verify();
  t.false(await s.has(diffId), 'verified is not published');
  const rec = await stream.commit();
  t.is(rec.diffId, diffId);
  t.is(rec.compression, 'gzip');
  t.is(rec.tarSize, tar.length);
  t.true(await s.has(diffId));
  t.is(readFileSync(path.join(s.dir(diffId), 'etc/hostname'), 'utf8'), 'box\n');
  t.deepEqual(readdirSync(s.layout.layersDir), [diffId.slice(7)]);
});

test('a diff id that does not match: DigestMismatchError from verify, and nothing left', async (t) => {
  const s = store(t);
  const wrong = sha256(Buffer.from('another tar'));
  const stream = s.stream(wrong, { diffId: wrong, preserveOwners: false });
  await feed(stream, tarball(files), 1 << 20);
  const err = await t.throwsAsync(stream.verify(), { instanceOf: DigestMismatchError });
  t.true(err instanceof TheDigestMismatchError, 'one class: lib/errors.ts');
  t.is(err!.expected, wrong);
  await stream.abort(err);
  t.false(await s.has(wrong));
  t.deepEqual(readdirSync(s.layout.layersDir), []);
});

test('abort halfway (a failed download) removes the partial layer', async (t) => {
  const s = store(t);
  const tar = tarball(files);
  const diffId = sha256(tar);
  const stream = s.stream(diffId, { diffId, preserveOwners: false });
  await feed(stream, tar.subarray(0, tar.length >> 1));
  await stream.abort(new Error('connection reset'));
  t.deepEqual(readdirSync(s.layout.layersDir), []);
  t.throws(() => stream.write(Buffer.alloc(1)), { message: /aborted/ }, 'no more bytes are taken');
});

test('a hostile entry stops the stream with a LayerError and writes nothing outside the layer', async (t) => {
  const s = store(t);
  const hostile: RawEntry[] = [{ name: 'ok', data: 'x' }, { name: '../escaped', data: 'evil' }];
  const tar = tarball(hostile);
  const diffId = sha256(tar);
  const stream = s.stream(diffId, { diffId, preserveOwners: false });
  const fed = feed(stream, gzipTar(hostile), 512).then(() => stream.verify());
  const err = await t.throwsAsync(fed, { instanceOf: LayerError });
  t.regex(err!.message, /escapes the layer directory/);
  await stream.abort(err);
  t.deepEqual(readdirSync(s.layout.layersDir), []);
  t.false(existsSync(path.join(s.layout.root, 'escaped')));
});
