import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { chainId, chainIds, DigestMismatchError, LayerError, LayerStore, Store, StoreLayout } from '../../lib/storage/index.js';
import { gzipTar, sha256, tarball, type RawEntry } from '../fixtures/storage-tar.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

function store(t: { teardown(fn: () => void): void }): LayerStore {
  const root = mkdtempSync(path.join(tmpdir(), 'nsbox-layers-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return new LayerStore(new StoreLayout(root));
}

function blob(s: LayerStore, bytes: Buffer): string {
  const file = path.join(s.layout.root, `blob-${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, bytes);
  return file;
}

const files: RawEntry[] = [
  { name: './', type: '5', mode: 0o755 },
  { name: './etc/', type: '5', mode: 0o755 },
  { name: './etc/hostname', data: 'box\n', mode: 0o644, mtime: 1_600_000_000 },
  { name: './etc/link', type: '1', linkname: './etc/hostname' },
  { name: './etc/sym', type: '2', linkname: '/etc/hostname' },
  { name: 'implicit/parent/file', data: 'x'.repeat(100_000), mode: 0o600 },
];

test('chain ids follow the OCI image spec', (t) => {
  const a = `sha256:${hex('a')}`;
  const b = `sha256:${hex('b')}`;
  const c = `sha256:${hex('c')}`;
  t.is(chainId(undefined, a), a);
  const ab = `sha256:${hex(`${a} ${b}`)}`;
  t.is(chainId(a, b), ab);
  t.deepEqual(chainIds([a, b, c]), [a, ab, `sha256:${hex(`${ab} ${c}`)}`]);
  t.throws(() => chainId(undefined, 'sha256:xyz'), { instanceOf: ValidationError });
});

test('unpack: gzip and plain layers by their bytes, diff id checked, marker written, idempotent', async (t) => {
  const s = store(t);
  const tar = tarball(files);
  const diffId = sha256(tar);
  for (const bytes of [gzipTar(files), tar]) {
    const rec = await s.unpack(diffId, blob(s, bytes), { diffId, preserveOwners: false });
    t.is(rec.diffId, diffId);
    t.is(rec.size, 4 + 100_000);
    const dir = s.dir(diffId);
    t.is(readFileSync(path.join(dir, 'etc/hostname'), 'utf8'), 'box\n');
    t.is(statSync(path.join(dir, 'etc/link')).ino, statSync(path.join(dir, 'etc/hostname')).ino);
    t.is(readlinkSync(path.join(dir, 'etc/sym')), '/etc/hostname');
    t.is(statSync(path.join(dir, 'implicit/parent/file')).mode & 0o7777, 0o600);
    t.is(statSync(path.join(dir, 'etc/hostname')).mtimeMs, 1_600_000_000_000);
    t.true(await s.has(diffId));
    await s.remove(diffId);
    t.false(await s.has(diffId));
  }
  const rec = await s.unpack(diffId, blob(s, tar), { diffId, preserveOwners: false });
  t.deepEqual(await s.unpack(diffId, '/nonexistent', { diffId }), rec);
  t.deepEqual(await s.list(), [rec]);
  t.deepEqual(readdirSync(s.layout.layersDir), [diffId.slice(7)]);
});

test('a wrong diff id or chain id is refused and leaves nothing', async (t) => {
  const s = store(t);
  const tar = tarball(files);
  const wrong = sha256(Buffer.from('other'));
  await t.throwsAsync(s.unpack(wrong, blob(s, tar), { diffId: wrong, preserveOwners: false }), {
    instanceOf: DigestMismatchError,
    message: /hashes to sha256:[0-9a-f]{64}, but the image config says/,
  });
  await t.throwsAsync(s.unpack(wrong, blob(s, tar), { diffId: sha256(tar) }), { instanceOf: ValidationError });
  t.deepEqual(readdirSync(s.layout.layersDir), []);
});

test('chains: lowerDirs lists the layers top first; layers of one image unpack in parallel', async (t) => {
  const s = store(t);
  const l1 = tarball([{ name: 'a', data: '1' }]);
  const l2 = tarball([{ name: 'b', data: '2' }]);
  const l3 = tarball([{ name: 'c', data: '3' }]);
  const diffs = [l1, l2, l3].map(sha256);
  const ids = chainIds(diffs);
  await Promise.all(
    [l1, l2, l3].map((tar, i) =>
      s.unpack(ids[i]!, blob(s, tar), { diffId: diffs[i]!, ...(i ? { parentChainId: ids[i - 1]! } : {}), preserveOwners: false }),
    ),
  );
  t.deepEqual(await s.lowerDirs(ids[2]!), [s.dir(ids[2]!), s.dir(ids[1]!), s.dir(ids[0]!)]);
  t.is((await s.get(ids[1]!)).parent, ids[0]);
});

test('a truncated or corrupt layer is refused and leaves nothing', async (t) => {
  const s = store(t);
  const full = tarball(files);
  const diffId = sha256(full);
  const gz = gzipTar(files);
  await t.throwsAsync(s.unpack(diffId, blob(s, gz.subarray(0, gz.length - 100)), { diffId, preserveOwners: false }), {
    instanceOf: LayerError,
    message: /gzip/,
  });
  await t.throwsAsync(s.unpack(diffId, blob(s, full.subarray(0, 3000)), { diffId, preserveOwners: false }), {
    instanceOf: LayerError,
    message: /truncated layer/,
  });
  await t.throwsAsync(s.unpack(diffId, blob(s, Buffer.from('this is not a tar at all'.repeat(40))), { diffId }), {
    instanceOf: LayerError,
    message: /bad tar header checksum/,
  });
  t.deepEqual(readdirSync(s.layout.layersDir), []);
});

test('repair removes interrupted unpacks and marker-less layers, keeps complete ones', async (t) => {
  const s = store(t);
  const tar = tarball(files);
  const diffId = sha256(tar);
  await s.unpack(diffId, blob(s, tar), { diffId, preserveOwners: false });
  const other = 'b'.repeat(64);
  mkdirSync(path.join(s.layout.layersDir, `${other}.tmp-abc123`, 'diff'), { recursive: true });
  mkdirSync(path.join(s.layout.layersDir, other, 'diff'), { recursive: true });
  await Store.open({ root: s.layout.root });
  t.deepEqual(readdirSync(s.layout.layersDir), [diffId.slice(7)]);
});
