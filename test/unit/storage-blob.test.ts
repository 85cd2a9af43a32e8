import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { NotFoundError } from '../../lib/errors.js';
import { BlobStore, DigestMismatchError, Store, StoreLayout } from '../../lib/storage/index.js';
import { DigestMismatchError as TheDigestMismatchError } from '../../lib/errors.js';
import { DigestMismatchError as RegistryDigestMismatchError } from '../../lib/image/registry/index.js';

const digestOf = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function store(t: { teardown(fn: () => void): void }): BlobStore {
  const root = mkdtempSync(path.join(tmpdir(), 'nsbox-blobs-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return new BlobStore(new StoreLayout(root));
}

/** Nothing under blobs/ but `expected`, nothing in tmp/. */
function leftovers(s: BlobStore): string[] {
  const list = (d: string) => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  return [...list(s.layout.blobsDir).map((n) => `blobs/${n}`), ...list(s.layout.tmpDir).map((n) => `tmp/${n}`)];
}

test('ingest from a buffer and from a stream; has, read, size, open, list, remove', async (t) => {
  const s = store(t);
  const data = Buffer.from('{"hello":"world"}');
  const d = digestOf(data);
  t.false(await s.has(d));
  const info = await s.ingest(data, d, data.length);
  t.deepEqual(info, { digest: d, size: data.length, path: s.path(d) });
  t.true(await s.has(d));
  t.true(s.hasSync(d));
  t.deepEqual(await s.read(d), data);
  t.deepEqual(s.readSmall(d), data);
  t.is(await s.size(d), data.length);
  const big = Buffer.alloc(3 << 20, 7);
  const bd = digestOf(big);
  await s.ingest(Readable.from((function* () {
    for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536);
  })()), bd);
  const chunks: Buffer[] = [];
  for await (const c of await s.open(bd)) chunks.push(c as Buffer);
  t.true(Buffer.concat(chunks).equals(big));
  t.deepEqual((await s.list()).sort(), [d, bd].sort());
  // ingesting what is already there is harmless
  await s.ingest(data, d);
  t.true(await s.remove(d));
  t.false(await s.remove(d));
  await t.throwsAsync(s.read(d), { instanceOf: NotFoundError });
  t.throws(() => s.readSmall(d), { instanceOf: NotFoundError });
  t.false(s.hasSync(d));
  await t.throwsAsync(s.open(d), { instanceOf: NotFoundError });
  t.deepEqual(leftovers(s), [`blobs/${bd.slice(7)}`]);
});

test('a digest mismatch is refused and leaves nothing behind', async (t) => {
  const s = store(t);
  const wrong = digestOf('something else');
  const err = await t.throwsAsync(s.ingest(Buffer.from('content'), wrong), { instanceOf: DigestMismatchError });
  t.is(err?.code, 'DIGEST_MISMATCH');
  // one class: what the registry client throws (its tampered-blob test checks the same) is this one
  t.true(err instanceof TheDigestMismatchError && err instanceof RegistryDigestMismatchError);
  t.is(err?.expected, wrong);
  t.is(err?.actual, digestOf('content'));
  t.false(await s.has(wrong));
  t.deepEqual(leftovers(s), []);
});

test('truncated input (fewer bytes than announced, or a stream that breaks) leaves nothing behind', async (t) => {
  const s = store(t);
  const data = Buffer.alloc(200_000, 1);
  const d = digestOf(data);
  await t.throwsAsync(s.ingest(data.subarray(0, 100_000), d, data.length), { instanceOf: DigestMismatchError, message: /100000 bytes, expected 200000/ });
  const broken = new Readable({
    read() {
      this.push(data.subarray(0, 50_000));
      this.destroy(new Error('connection reset'));
    },
  });
  await t.throwsAsync(s.ingest(broken, d, data.length), { message: /connection reset/ });
  // more than announced is cut off early
  await t.throwsAsync(s.ingest(Buffer.concat([data, data]), d, data.length), { instanceOf: DigestMismatchError });
  t.false(await s.has(d));
  t.deepEqual(leftovers(s), []);
  await t.throwsAsync(s.ingest(data, 'md5:abc'), { message: /not a sha256 digest/ });
});

test('read() notices a blob corrupted on disk; repair() removes temp files a crash left', async (t) => {
  const s = store(t);
  const d = digestOf('abc');
  await s.ingest(Buffer.from('abc'), d);
  writeFileSync(s.path(d), 'abd');
  await t.throwsAsync(s.read(d), { instanceOf: DigestMismatchError });
  t.throws(() => s.readSmall(d), { instanceOf: DigestMismatchError });
  writeFileSync(path.join(s.layout.tmpDir, 'blob-0123-dead'), 'half');
  const st = await Store.open({ root: s.layout.root });
  t.deepEqual(readdirSync(st.layout.tmpDir), []);
});

test('ingestFile copies a file in, verified', async (t) => {
  const s = store(t);
  await s.init();
  const src = path.join(s.layout.root, 'src');
  writeFileSync(src, 'file content');
  const d = digestOf('file content');
  await s.ingestFile(src, d, 12);
  t.is((await s.read(d)).toString(), 'file content');
  await t.throwsAsync(s.ingestFile(src, digestOf('x')), { instanceOf: DigestMismatchError });
});
