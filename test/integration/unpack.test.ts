/**
 * The layer unpack against the real kernel, as root: hostile layers are refused with an error that
 * names the entry and nothing appears outside the layer directory; good layers keep owners, modes,
 * devices, xattrs and whiteouts, and an overlay of them (mounted in a private mount namespace) shows
 * the merged view docker would.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ExecutionContext } from 'ava';
import { native } from '../../lib/native.js';
import { chainIds, LayerError, Store } from '../../lib/storage/index.js';
import { unpackLayer } from '../../lib/storage/unpack.js';
import { gzipTar, sha256, tarball, type RawEntry } from '../fixtures/storage-tar.js';
import { rootTest as test } from './_helpers.js';

interface Sandbox {
  base: string;
  sentinel: string;
  dest: string;
  snapshot(): string;
}

/** base/{sentinel,layer}: the sentinel directory next to the layer must never change. */
function sandbox(t: ExecutionContext): Sandbox {
  const base = mkdtempSync(path.join(tmpdir(), 'nsbox-unpack-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const sentinel = path.join(base, 'sentinel');
  mkdirSync(sentinel);
  writeFileSync(path.join(sentinel, 'keep'), 'keep');
  const dest = path.join(base, 'layer');
  mkdirSync(dest);
  const snapshot = () =>
    execFileSync('find', [base, '-path', `${dest}/*`, '-prune', '-o', '-printf', '%p %y %m %s %n %T@\\n'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l && !l.startsWith(`${dest}/`) && !l.startsWith(`${dest} `))
      .sort()
      .join('\n');
  return { base, sentinel, dest, snapshot };
}

const outside = () => path.join(tmpdir(), `nsbox-evil-${randomBytes(6).toString('hex')}`);

async function refused(t: ExecutionContext, entries: RawEntry[], message: RegExp, notCreated: string[] = []) {
  const sb = sandbox(t);
  const before = sb.snapshot();
  const passwd = statSync('/etc/passwd');
  const file = path.join(sb.base, 'layer.tgz');
  writeFileSync(file, gzipTar(entries));
  const before2 = sb.snapshot();
  const err = await t.throwsAsync(unpackLayer(file, sb.dest, { name: 'layer sha256:test' }), { instanceOf: LayerError });
  t.regex(err?.message ?? '', message);
  t.regex(err?.message ?? '', /^layer sha256:test: entry "/);
  t.is(sb.snapshot(), before2, 'nothing changed next to the layer directory');
  t.true(before.length > 0);
  for (const p of notCreated) t.false(existsSync(p), `${p} must not exist`);
  const after = statSync('/etc/passwd');
  t.is(after.nlink, passwd.nlink);
  t.is(after.mtimeMs, passwd.mtimeMs);
  return sb;
}

test('refused: an absolute path', async (t) => {
  const target = outside();
  await refused(t, [{ name: target, data: 'pwned' }], /is an absolute path: it escapes the layer directory/, [target]);
});

test('refused: ../ escapes, plain and hidden in the middle', async (t) => {
  const sb = await refused(t, [{ name: '../sentinel/pwned', data: 'x' }], /entry "..\/sentinel\/pwned" escapes the layer directory/);
  t.false(existsSync(path.join(sb.sentinel, 'pwned')));
  await refused(t, [{ name: 'a/', type: '5' }, { name: 'a/../../sentinel/keep', data: 'x' }], /escapes the layer directory/);
});

test('refused: a symlink to / and then a file written through it', async (t) => {
  const target = outside();
  await refused(
    t,
    [
      { name: 'root', type: '2', linkname: '/' },
      { name: `root${target}`, data: 'pwned' },
    ],
    /goes through the symlink "root"/,
    [target],
  );
});

test('refused: a relative symlink out of the layer, then a file through it', async (t) => {
  const sb = await refused(
    t,
    [
      { name: 's', type: '2', linkname: '../sentinel' },
      { name: 's/pwned', data: 'x' },
    ],
    /entry "s\/pwned" goes through the symlink "s"/,
  );
  t.false(existsSync(path.join(sb.sentinel, 'pwned')));
});

test('refused: a directory replaced by a symlink, then a file under it', async (t) => {
  const target = outside();
  mkdirSync(target);
  t.teardown(() => rmSync(target, { recursive: true, force: true }));
  await refused(
    t,
    [
      { name: 'd/', type: '5' },
      { name: 'd/inside', data: 'fine' },
      { name: 'd', type: '2', linkname: target },
      { name: 'd/pwned', data: 'x' },
    ],
    /entry "d\/pwned" goes through the symlink "d"/,
  );
  t.deepEqual(readdirSync(target), []);
});

test('refused: hard links to /etc/passwd (absolute, ../, and through a symlink)', async (t) => {
  await refused(t, [{ name: 'passwd', type: '1', linkname: '/etc/passwd' }], /has an absolute hard link target "\/etc\/passwd"/);
  await refused(t, [{ name: 'passwd', type: '1', linkname: '../../../../../../etc/passwd' }], /hard link target .* escapes the layer directory/);
  await refused(
    t,
    [
      { name: 'etc', type: '2', linkname: '/etc' },
      { name: 'passwd', type: '1', linkname: 'etc/passwd' },
    ],
    /entry "passwd" goes through the symlink "etc"/,
  );
  await refused(t, [{ name: 'x', type: '1', linkname: 'missing' }], /is a hard link to "missing", which is not in the layer/);
});

test('refused: over-long names, an unsupported type, overlay xattrs', async (t) => {
  await refused(t, [{ name: `${'n'.repeat(300)}`, data: 'x' }], /name component longer than 255 bytes/);
  await refused(t, [{ name: `${'abcdefgh/'.repeat(500)}f`, data: 'x' }], /longer than 4000 bytes/);
  await refused(t, [{ name: 'sparse', type: 'S', data: 'x' }], /GNU sparse files are not supported/);
  await refused(t, [{ name: 'odd', type: 'Z' }], /unsupported tar entry type "Z"/);
  await refused(t, [{ name: 'd/', type: '5', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } }], /reserved for whiteouts/);
});

test('not refused but harmless: an entry replacing a symlink or a hard link never writes through it', async (t) => {
  const sb = sandbox(t);
  const target = outside();
  const file = path.join(sb.base, 'l.tar');
  writeFileSync(
    file,
    tarball([
      { name: 'f', type: '2', linkname: target },
      { name: 'f', data: 'replaced' },
      { name: 's', type: '2', linkname: target },
      { name: 'h', type: '1', linkname: 's' },
      { name: 'h', data: 'also replaced' },
      { name: 'keep', type: '2', linkname: path.join(sb.sentinel, 'keep') },
      { name: 'k2', type: '1', linkname: 'keep' },
    ]),
  );
  const before = sb.snapshot();
  await unpackLayer(file, sb.dest);
  t.is(readFileSync(path.join(sb.dest, 'f'), 'utf8'), 'replaced');
  t.is(readFileSync(path.join(sb.dest, 'h'), 'utf8'), 'also replaced');
  t.true(lstatSync(path.join(sb.dest, 's')).isSymbolicLink());
  // a hard link to a symlink is a second symlink, not the file it points to
  t.true(lstatSync(path.join(sb.dest, 'k2')).isSymbolicLink());
  t.false(existsSync(target));
  t.is(sb.snapshot(), before);
  t.is(readFileSync(path.join(sb.sentinel, 'keep'), 'utf8'), 'keep');
});

test('a good layer keeps owners, modes (setuid, sticky), times, links, devices, fifos and xattrs', async (t) => {
  const sb = sandbox(t);
  const file = path.join(sb.base, 'l.tgz');
  writeFileSync(
    file,
    gzipTar([
      { name: './', type: '5', mode: 0o755 },
      { name: './home/', type: '5', mode: 0o750, uid: 1000, gid: 1000, mtime: 1_500_000_000 },
      { name: './home/private.txt', data: 'secret', mode: 0o600, uid: 1000, gid: 1001 },
      { name: './tmp/', type: '5', mode: 0o1777 },
      { name: './bin/', type: '5' },
      { name: './bin/su', data: 'ELF', mode: 0o4755, uid: 0, gid: 0 },
      { name: './bin/sg', data: 'ELF', mode: 0o2755, uid: 0, gid: 42 },
      { name: './bin/ping', data: 'ELF', mode: 0o755, pax: { 'SCHILY.xattr.user.note': Buffer.from([0, 1, 2, 255]) } },
      // modes that openat gives a new file itself, and modes the umask would cut (fchmod then)
      { name: './bin/ro', data: 'r', mode: 0o444 },
      { name: './bin/tool', data: 'x', mode: 0o755 },
      { name: './bin/shared', data: 'w', mode: 0o666 },
      { name: './bin/all', data: 'a', mode: 0o777 },
      { name: './bin/group', data: 'g', mode: 0o664, gid: 42 },
      { name: './bin/sh', type: '2', linkname: '/bin/busybox', uid: 5, gid: 6 },
      { name: './bin/ln', type: '1', linkname: './bin/su' },
      { name: './dev/', type: '5' },
      { name: './dev/null', type: '3', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: './dev/loop0', type: '4', mode: 0o660, devmajor: 7, devminor: 0, gid: 6 },
      { name: './dev/fifo', type: '6', mode: 0o640 },
      { name: `./deep/${'x'.repeat(120)}/file`, data: 'long name via pax' },
    ]),
  );
  await unpackLayer(file, sb.dest);
  const st = (p: string) => lstatSync(path.join(sb.dest, p));
  t.is(st('home').mode & 0o7777, 0o750);
  t.is(st('home').uid, 1000);
  t.is(st('home').mtimeMs, 1_500_000_000_000);
  t.deepEqual([st('home/private.txt').uid, st('home/private.txt').gid, st('home/private.txt').mode & 0o7777], [1000, 1001, 0o600]);
  t.is(st('tmp').mode & 0o7777, 0o1777);
  t.is(st('bin/su').mode & 0o7777, 0o4755);
  t.is(st('bin/sg').mode & 0o7777, 0o2755);
  t.is(st('bin/sg').gid, 42);
  for (const [name, mode] of [['ro', 0o444], ['tool', 0o755], ['shared', 0o666], ['all', 0o777], ['group', 0o664]] as const) {
    t.is(st(`bin/${name}`).mode & 0o7777, mode, `bin/${name}`);
  }
  t.is(readFileSync(path.join(sb.dest, 'bin/ro'), 'utf8'), 'r');
  t.is(st('bin/group').gid, 42);
  t.is(readlinkSync(path.join(sb.dest, 'bin/sh')), '/bin/busybox');
  t.deepEqual([st('bin/sh').uid, st('bin/sh').gid], [5, 6]);
  t.is(st('bin/ln').ino, st('bin/su').ino);
  t.deepEqual(native.lgetxattr(path.join(sb.dest, 'bin/ping'), 'user.note'), Buffer.from([0, 1, 2, 255]));
  t.true(st('dev/null').isCharacterDevice());
  t.is(st('dev/null').rdev, (1 << 8) | 3);
  t.is(st('dev/null').mode & 0o7777, 0o666);
  t.true(st('dev/loop0').isBlockDevice());
  t.true(st('dev/fifo').isFIFO());
  t.is(readFileSync(path.join(sb.dest, 'deep', 'x'.repeat(120), 'file'), 'utf8'), 'long name via pax');
});

test('the addon extractor and layer-writer.ts make the same tree from a layer with every kind of entry', async (t) => {
  const sb = sandbox(t);
  const big = randomBytes(3 << 20);
  const tar = tarball([
    { name: './', type: '5', mode: 0o755, mtime: 1_600_000_000 },
    { name: 'etc/', type: '5', mode: 0o750, uid: 1000, gid: 1001, mtime: 1_500_000_000 },
    { name: 'etc/conf', data: 'c', mode: 0o640, uid: 7, gid: 8, pax: { 'SCHILY.xattr.user.note': Buffer.from([0, 1, 255]) } },
    { name: 'etc/setuid', data: 'ELF', mode: 0o4755 },
    { name: 'etc/ro', data: '', mode: 0o444, mtime: 1_400_000_000 },
    { name: 'implicit/parent/file', data: 'parents made on the way' },
    { name: 'big', data: big, mode: 0o600 },
    { name: 'sym', type: '2', linkname: '../../outside', uid: 3, gid: 4, mtime: 1_300_000_000 },
    { name: 'hard', type: '1', linkname: 'etc/conf' },
    { name: 'hardsym', type: '1', linkname: 'sym' },
    { name: 'dev/', type: '5' },
    { name: 'dev/null', type: '3', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'dev/sda', type: '4', mode: 0o660, devmajor: 8, devminor: 0, gid: 6 },
    { name: 'dev/fifo', type: '6', mode: 0o640 },
    { name: `long/${'n'.repeat(150)}/${'m'.repeat(120)}`, data: 'a long name (pax path)' },
    // replaced paths: a file by a directory, a directory (with content) by a file, a file by a symlink
    { name: 'swap1', data: 'file first' },
    { name: 'swap1/', type: '5', mode: 0o711 },
    { name: 'swap2/', type: '5' },
    { name: 'swap2/inner', data: 'gone' },
    { name: 'swap2', data: 'file now' },
    { name: 'swap3', data: 'x' },
    { name: 'swap3', type: '2', linkname: 'etc' },
    // whiteouts: a file, an opaque directory, an aufs metadata entry (skipped)
    { name: 'etc/.wh.gone', type: '0', data: '' },
    { name: 'opaque/', type: '5' },
    { name: 'opaque/.wh..wh..opq', data: '' },
    { name: '.wh..wh.plnk/', type: '5' },
  ]);
  const file = path.join(sb.base, 'every.tgz');
  writeFileSync(file, gzipSync(tar));
  // what the layer does not set (implicit parents, whiteouts) has the time of the unpack: left out
  const list = (d: string) =>
    execFileSync('find', ['.', '-printf', '%p %y %m %U %G %s %n %l %T@\\n'], { cwd: d, encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => (Number(l.slice(l.lastIndexOf(' ') + 1)) > 1_700_000_000 ? `${l.slice(0, l.lastIndexOf(' '))} (now)` : l))
      .sort();
  const xattrs = (d: string) => ({
    note: native.lgetxattr(path.join(d, 'etc/conf'), 'user.note'),
    opaque: native.lgetxattr(path.join(d, 'opaque'), 'trusted.overlay.opaque'),
  });
  const results = [];
  const trees = [];
  for (const engine of ['native', 'js'] as const) {
    const dest = path.join(sb.base, engine);
    mkdirSync(dest);
    const warnings: string[] = [];
    results.push({ ...(await unpackLayer(file, dest, { engine, name: 'layer x', onWarning: (w) => warnings.push(w) })), warnings });
    trees.push({ list: list(dest), xattrs: xattrs(dest), big: readFileSync(path.join(dest, 'big')).equals(big) });
  }
  t.deepEqual(results[0], results[1]);
  t.is(results[0]!.diffId, sha256(tar));
  t.deepEqual(results[0]!.warnings, ['layer x: skipped the aufs metadata entry ".wh..wh.plnk/"']);
  t.deepEqual(trees[0], trees[1]);
  t.true(trees[0]!.big);
  t.deepEqual(trees[0]!.xattrs, { note: Buffer.from([0, 1, 255]), opaque: Buffer.from('y') });
  t.true(trees[0]!.list.some((l) => l === './etc/gone c 0 0 0 0 1  (now)'), 'the whiteout is a 0/0 char device');
  t.true(trees[0]!.list.includes('./hardsym l 777 3 4 13 2 ../../outside 1300000000.0000000000'), 'a hard link to a symlink is that symlink');
});

test('GNU tar layers unpack to the same tree as GNU tar extracts', async (t) => {
  const sb = sandbox(t);
  const src = path.join(sb.base, 'src');
  mkdirSync(path.join(src, 'a/b'), { recursive: true });
  writeFileSync(path.join(src, 'a/b/file'), 'x'.repeat(70_000));
  writeFileSync(path.join(src, `a/${'long'.repeat(40)}`), 'gnu long name');
  execFileSync('ln', ['-s', '../b/file', path.join(src, 'a/rel')]);
  execFileSync('ln', [path.join(src, 'a/b/file'), path.join(src, 'a/hard')]);
  execFileSync('chown', ['-R', '123:456', path.join(src, 'a/b')]);
  execFileSync('chmod', ['2711', path.join(src, 'a/b')]);
  for (const format of ['gnu', 'posix']) {
    const file = path.join(sb.base, `${format}.tgz`);
    execFileSync('tar', ['-czf', file, `--format=${format}`, '-C', src, '.']);
    const ours = path.join(sb.base, `ours-${format}`);
    const theirs = path.join(sb.base, `theirs-${format}`);
    mkdirSync(ours);
    mkdirSync(theirs);
    await unpackLayer(file, ours);
    execFileSync('tar', ['-xzf', file, '-C', theirs, '--numeric-owner']);
    const list = (d: string) =>
      execFileSync('find', ['.', '-printf', '%p %y %m %U %G %s %n %l|%T@\\n'], { cwd: d, encoding: 'utf8' }).trim().split('\n').sort();
    const [a, b] = [list(ours), list(theirs)];
    t.deepEqual(a.map((l) => l.split('|')[0]), b.map((l) => l.split('|')[0]), format);
    // utimes takes seconds as a double, which cannot hold every nanosecond: the same to 2 µs.
    a.forEach((l, i) => {
      const delta = Math.abs(Number(l.split('|')[1]) - Number(b[i]!.split('|')[1]));
      t.true(delta < 2e-6, `${format}: mtime of ${l.split(' ')[0]} differs by ${delta} s`);
    });
  }
});

/** Runs sh in a private mount namespace (util-linux unshare): nothing mounted stays behind. */
function inPrivateMountNs(script: string): string {
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-ec', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`unshare sh failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

test('a layer chain with whiteouts and an opaque dir, through the store, read back through overlayfs', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'nsbox-store-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = await Store.open({ root });
  const layers = [
    tarball([
      { name: 'data/', type: '5' },
      { name: 'data/kept.txt', data: 'kept' },
      { name: 'data/deleted.txt', data: 'deleted' },
      { name: 'data/dir-deleted/', type: '5' },
      { name: 'data/dir-deleted/f', data: 'f' },
      { name: 'opaque/', type: '5' },
      { name: 'opaque/from-layer1.txt', data: '1' },
      { name: 'opaque/sub/', type: '5' },
      { name: 'opaque/sub/deep', data: '1' },
    ]),
    tarball([
      { name: 'data/', type: '5' },
      { name: 'data/.wh.deleted.txt' },
      { name: 'data/.wh.dir-deleted' },
      { name: 'data/new.txt', data: 'new' },
      { name: 'opaque/', type: '5' },
      { name: 'opaque/from-layer2.txt', data: '2' },
    ]),
    tarball([
      { name: './opaque/', type: '5' },
      { name: './opaque/.wh..wh..opq' },
      { name: './opaque/from-layer3.txt', data: '3' },
    ]),
  ];
  const diffIds = layers.map(sha256);
  const ids = chainIds(diffIds);
  for (const [i, tar] of layers.entries()) {
    const gz = i === 1 ? gzipSync(tar) : tar; // plain and gzip blobs alike
    const blob = await store.blobs.ingest(gz, sha256(gz));
    await store.layers.unpack(ids[i]!, blob.path, { diffId: diffIds[i]!, ...(i ? { parentChainId: ids[i - 1]! } : {}) });
  }
  const l2 = store.layers.dir(ids[1]!);
  const wh = lstatSync(path.join(l2, 'data/deleted.txt'));
  t.true(wh.isCharacterDevice());
  t.is(wh.rdev, 0);
  t.false(existsSync(path.join(l2, 'data/.wh.deleted.txt')));
  t.deepEqual(native.lgetxattr(path.join(store.layers.dir(ids[2]!), 'opaque'), 'trusted.overlay.opaque'), Buffer.from('y'));

  const lower = (await store.layers.lowerDirs(ids[2]!)).join(':');
  const merged = path.join(root, 'merged');
  mkdirSync(merged);
  const out = inPrivateMountNs(
    `mount -t overlay overlay -o ro,lowerdir=${lower} ${merged}; cd ${merged}; ` +
      `echo data: $(ls -A data); echo opaque: $(ls -A opaque); cat data/kept.txt; echo; cd /; umount ${merged}`,
  );
  t.is(out, 'data: kept.txt new.txt\nopaque: from-layer3.txt\nkept\n');
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(merged), 'no mount left in our namespace');
});

test('a hostile layer through the store leaves neither a layer nor a temp directory', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'nsbox-store-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = await Store.open({ root });
  const tar = tarball([
    { name: 'ok', data: 'ok'.repeat(100_000) },
    { name: 'etc', type: '2', linkname: '/etc' },
    { name: 'etc/passwd', data: 'root::0:0::/:/bin/sh\n' },
  ]);
  const blob = await store.blobs.ingest(tar, sha256(tar));
  const err = await t.throwsAsync(store.layers.unpack(sha256(tar), blob.path, { diffId: sha256(tar) }), { instanceOf: LayerError });
  t.is(err?.message, `layer ${blob.digest}: entry "etc/passwd" goes through the symlink "etc": refused, a layer may not write through links`);
  t.is(err?.entry, 'etc/passwd');
  t.deepEqual(readdirSync(store.layout.layersDir), []);
  t.false(readFileSync('/etc/passwd', 'utf8').startsWith('root::0:0::/:/bin/sh'));
});
