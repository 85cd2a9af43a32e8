/**
 * Image archives end to end: docker-archive, oci-archive (plain and gzipped, from a file or a stream)
 * and OCI layout dirs that skopeo writes from images this suite builds from busybox with umoci, loaded
 * and run; images saved in both formats and read back by skopeo and by Image.load; corrupt archives
 * refused with nothing left in the store's tmp/.
 */
import { execFile } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import anyTest, { type TestFn } from 'ava';
import { Container, Image, NsboxError, ValidationError } from '../../lib/index.js';
import { collect, isRoot, rootfs, skipIf } from './_helpers.js';
import { buildImages, registryUnavailable, type BuiltImages } from '../fixtures/registry.js';

const run = promisify(execFile);

interface Ctx {
  images: BuiltImages;
  /** Temp dir for archives and stores; removed after the suite. */
  dir: string;
  /** The store containers run from (NSBOX_ROOT). */
  root: string;
  busyboxDigest: string;
  layeredDigest: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = registryUnavailable() ?? (isRoot ? undefined : 'needs root');
const rtest = skipIf(reason, test.serial);

const skopeo = (...args: string[]) => run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 16 << 20 });

function refDigest(layout: string, ref: string): string {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const m = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === ref);
  if (!m) throw new Error(`no ${ref} in ${layout}`);
  return m.digest;
}

test.before(async (t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'nsbox-archive-'));
  t.context.root = join(t.context.dir, 'store');
  t.context.images = await buildImages(rootfs());
  const { layout } = t.context.images;
  const d = t.context.dir;
  await skopeo('copy', '-q', `oci:${layout}:busybox`, `docker-archive:${d}/a.tar:busybox:latest`);
  await skopeo('copy', '-q', `oci:${layout}:busybox`, `oci-archive:${d}/b.tar:latest`);
  await skopeo('copy', '-q', `oci:${layout}:layered`, `docker-archive:${d}/c.tar:layered:1`);
  writeFileSync(`${d}/c.tar.gz`, gzipSync(readFileSync(`${d}/c.tar`)));
  t.context.busyboxDigest = refDigest(layout, 'busybox');
  t.context.layeredDigest = refDigest(layout, 'layered');
});

test.after.always((t) => {
  t.context.images?.cleanup();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

/** A new empty store under the suite's temp dir. */
function freshStore(t: { context: Ctx }, name: string): string {
  const root = join(t.context.dir, `store-${name}`);
  mkdirSync(root);
  return root;
}

function useRoot(t: { context: Ctx; teardown(fn: () => void): void }): void {
  const prev = process.env.NSBOX_ROOT;
  process.env.NSBOX_ROOT = t.context.root;
  t.teardown(() => (prev === undefined ? delete process.env.NSBOX_ROOT : (process.env.NSBOX_ROOT = prev)));
}

async function runIn(image: string, command?: string[]): Promise<string> {
  const shell = !command ? {} : command[0] === '/bin/sh' ? { entrypoint: command.slice(0, 2), command: command.slice(2) } : { command };
  await using c = await Container.run({ image, pull: 'never', ...shell });
  const [out, status] = await Promise.all([collect(c.stdout), c.wait()]);
  if (status.exitCode !== 0) throw new Error(`${image}: ${(command ?? []).join(' ')} exited ${status.exitCode}`);
  return out;
}

const tmpEmpty = (root: string) => readdirSync(join(root, 'tmp'));

rtest('a docker-archive from skopeo loads under its RepoTags and runs', async (t) => {
  useRoot(t);
  const [image, ...more] = await Image.load(join(t.context.dir, 'a.tar'), { root: t.context.root });
  t.is(more.length, 0);
  t.deepEqual(image!.names, ['docker.io/library/busybox:latest']);
  t.is(image!.layers[0]!.mediaType, 'application/vnd.docker.image.rootfs.diff.tar');
  t.deepEqual(image!.config.config?.Cmd, ['sh']);
  const got = await Image.get('busybox', { root: t.context.root });
  t.is(got.digest, image!.digest);
  t.is(await runIn('busybox', ['/bin/sh', '-c', 'echo from-docker-archive']), 'from-docker-archive\n');
  t.deepEqual(tmpEmpty(t.context.root), []);
});

rtest('an oci-archive loads with the manifest digest it had; a bare-tag ref.name names it only through `name`', async (t) => {
  useRoot(t);
  const [unnamed] = await Image.load(join(t.context.dir, 'b.tar'), { root: t.context.root });
  t.is(unnamed!.digest, t.context.busyboxDigest);
  const [named] = await Image.load(join(t.context.dir, 'b.tar'), { root: t.context.root, name: 'loaded/oci' });
  t.is(named!.digest, t.context.busyboxDigest);
  t.deepEqual(named!.names, ['docker.io/loaded/oci:latest'], 'the bare tag "latest" with the given name');
  t.is(await runIn('loaded/oci', ['/bin/sh', '-c', 'echo from-oci-archive']), 'from-oci-archive\n');
  t.deepEqual(tmpEmpty(t.context.root), []);
});

rtest('a gzipped docker-archive loads from a stream; the layered image runs with its whiteouts', async (t) => {
  useRoot(t);
  const images = await Image.load(createReadStream(join(t.context.dir, 'c.tar.gz')), { root: t.context.root });
  t.is(images.length, 1);
  t.deepEqual(images[0]!.names, ['docker.io/library/layered:1']);
  t.is(images[0]!.layers.length, 3);
  t.is(await runIn('layered:1'), 'kept\n', 'Entrypoint /bin/cat + Cmd /data/kept.txt');
  const ls = await runIn('layered:1', ['/bin/sh', '-c', 'ls /data /opaque']);
  t.false(ls.includes('deleted.txt') || ls.includes('gone'));
  t.true(ls.includes('from-layer3.txt') && !ls.includes('from-layer2.txt'));
  t.deepEqual(tmpEmpty(t.context.root), []);
});

rtest('a docker-archive with gzip layer tars (and a legacy <id>/layer.tar link) loads, runs and saves back as plain tars', async (t) => {
  const root = freshStore(t, 'gzip-layers');
  const x = join(t.context.dir, 'gz-layers');
  mkdirSync(x);
  await run('tar', ['-xf', join(t.context.dir, 'c.tar'), '-C', x]);
  const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
  manifest[0]!.Layers = manifest[0]!.Layers.map((name, i) => {
    writeFileSync(join(x, `${name}.gz`), gzipSync(readFileSync(join(x, name))));
    rmSync(join(x, name));
    mkdirSync(join(x, `legacy${i}`));
    symlinkSync(`../${name}.gz`, join(x, `legacy${i}`, 'layer.tar'));
    return `legacy${i}/layer.tar`;
  });
  writeFileSync(join(x, 'manifest.json'), JSON.stringify(manifest));
  await run('tar', ['-cf', join(t.context.dir, 'gz-layers.tar'), '-C', x, '.']);
  const [image] = await Image.load(join(t.context.dir, 'gz-layers.tar'), { root });
  t.true(image!.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
  const plain = await Image.get('layered:1', { root: t.context.root });
  t.is(image!.id, plain.id);
  t.deepEqual(image!.layers.map((l) => l.diffId), plain.layers.map((l) => l.diffId));
  const prev = process.env.NSBOX_ROOT;
  process.env.NSBOX_ROOT = root;
  t.teardown(() => (prev === undefined ? delete process.env.NSBOX_ROOT : (process.env.NSBOX_ROOT = prev)));
  t.is(await runIn('layered:1'), 'kept\n');
  const saved = join(t.context.dir, 'gz-layers-saved.tar');
  await image!.save(saved);
  const [back] = await Image.load(saved, { root: freshStore(t, 'gzip-layers-back') });
  t.is(back!.digest, plain.digest, 'saved with plain layer tars: the same image as the plain archive');
  t.deepEqual(tmpEmpty(root), []);
});

rtest('OCI layout directories: every image, and this host\'s entry of a nested index', async (t) => {
  const root = freshStore(t, 'layout');
  const loaded = await Image.load(t.context.images.layout, { root });
  const digests = loaded.map((i) => i.digest);
  t.true(digests.includes(t.context.busyboxDigest) && digests.includes(t.context.layeredDigest), digests.join(' '));
  t.true(loaded.every((i) => i.names.length === 0), 'ref names that are bare tags name nothing');
  const two = await Image.load(t.context.images.layout, { root, name: 'x' }).catch((e: unknown) => e);
  t.true(two instanceof ValidationError, 'a name for several images is refused');
  if (process.arch === 'x64') {
    const multi = await Image.load(t.context.images.multi, { root });
    const amd64 = multi.find((i) => i.digest === refDigest(t.context.images.multi, 'amd64'));
    t.truthy(amd64);
    t.is(amd64!.record.extraBlobs.length, 1, 'the index it was chosen from is kept');
  }
  t.deepEqual(tmpEmpty(root), []);
});

rtest('save as oci-archive and docker-archive: skopeo reads both, and loading them back gives the same image', async (t) => {
  const oci = await Image.get(t.context.busyboxDigest, { root: t.context.root });
  t.regex(oci.layers[0]!.mediaType, /gzip/, 'stored as gzip: the docker save has to decompress');
  const o = join(t.context.dir, 'saved-oci.tar');
  const d = join(t.context.dir, 'saved-docker.tar');
  await oci.save(o, { format: 'oci' });
  await oci.save(d);

  // skopeo accepts both and copies them on
  const { stdout } = await skopeo('inspect', `docker-archive:${d}`);
  t.is((JSON.parse(stdout) as { Layers: string[] }).Layers.length, 1);
  await skopeo('copy', '-q', `oci-archive:${o}`, `oci:${t.context.dir}/copied:x`);
  t.is(refDigest(join(t.context.dir, 'copied'), 'x'), t.context.busyboxDigest, 'skopeo keeps the OCI manifest as it is');
  await skopeo('copy', '-q', `docker-archive:${d}`, `docker-archive:${t.context.dir}/recopied.tar:again/busybox:2`);

  // and loading what was saved (or what skopeo made of it) gives the same image
  const r1 = freshStore(t, 'roundtrip-oci');
  const [fromOci] = await Image.load(o, { root: r1 });
  t.is(fromOci!.digest, oci.digest);
  t.deepEqual(fromOci!.names, oci.names.filter((n) => !n.includes('@')));
  const r2 = freshStore(t, 'roundtrip-docker');
  const [fromDocker] = await Image.load(d, { root: r2 });
  t.is(fromDocker!.id, oci.id, 'same config digest');
  const [recopied] = await Image.load(join(t.context.dir, 'recopied.tar'), { root: r2 });
  t.is(recopied!.id, oci.id);
  t.true(recopied!.names.includes('docker.io/again/busybox:2'), recopied!.names.join(' '));

  // a docker-loaded image (plain tar blobs) saves in both formats too
  const docker = await Image.get('layered:1', { root: t.context.root });
  const d2 = join(t.context.dir, 'layered-docker.tar');
  const o2 = join(t.context.dir, 'layered-oci.tar');
  await docker.save(d2, { format: 'docker' });
  await docker.save(o2, { format: 'oci' });
  await skopeo('inspect', `docker-archive:${d2}`);
  await skopeo('copy', '-q', `oci-archive:${o2}`, `oci:${t.context.dir}/copied2:y`);
  const [back] = await Image.load(d2, { root: freshStore(t, 'roundtrip-layered') });
  t.is(back!.id, docker.id);
  t.is(back!.digest, docker.digest, 'the same plain layers give the same synthesized manifest');
  const [backOci] = await Image.load(o2, { root: freshStore(t, 'roundtrip-layered-oci') });
  t.is(backOci!.digest, docker.digest);
  for (const r of [r1, r2]) t.deepEqual(tmpEmpty(r), []);
  t.false(readdirSync(t.context.dir).some((n) => n.includes('.nsbox-')), 'no temp file left next to the saved archives');
});

rtest('corrupt archives are refused with a clear error and nothing left half-written', async (t) => {
  const root = freshStore(t, 'corrupt');
  const bad = join(t.context.dir, 'bad');
  mkdirSync(bad);
  const refuse = async (source: string, message: RegExp, code?: string) => {
    const err = await t.throwsAsync(Image.load(source, { root }), { message });
    t.true(err instanceof NsboxError, String(err));
    if (code) t.is((err as NsboxError).code, code);
    t.deepEqual(tmpEmpty(root), [], 'tmp/ is empty');
    t.deepEqual(readdirSync(join(root, 'blobs', 'sha256')), [], 'no blob stored');
    t.deepEqual(await Image.list({ root }), []);
  };

  // a truncated tar, plain and gzipped
  const truncated = join(bad, 'truncated.tar');
  writeFileSync(truncated, readFileSync(join(t.context.dir, 'a.tar')).subarray(0, Math.floor(statSync(join(t.context.dir, 'a.tar')).size / 2)));
  await refuse(truncated, /truncated/, 'ERR_ARCHIVE');
  const truncatedGz = join(bad, 'truncated.tar.gz');
  writeFileSync(truncatedGz, readFileSync(join(t.context.dir, 'c.tar.gz')).subarray(0, 100_000));
  await refuse(truncatedGz, /gzip|truncated/, 'ERR_ARCHIVE');

  // a layer whose bytes are not what manifest.json and the config say
  const x = join(bad, 'x');
  mkdirSync(x);
  await run('tar', ['-xf', join(t.context.dir, 'a.tar'), '-C', x]);
  const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
  const layer = join(x, manifest[0]!.Layers[0]!);
  const bytes = readFileSync(layer);
  bytes[bytes.length - 2048] = bytes[bytes.length - 2048]! ^ 0xff;
  writeFileSync(layer, bytes);
  const tampered = join(bad, 'tampered.tar');
  await run('tar', ['-cf', tampered, '-C', x, '.']);
  await refuse(tampered, /hashes to/, 'DIGEST_MISMATCH');

  // an OCI layout whose blob was swapped
  const y = join(bad, 'y');
  mkdirSync(y);
  await run('tar', ['-xf', join(t.context.dir, 'b.tar'), '-C', y]);
  const cfg = (JSON.parse(readFileSync(join(y, 'blobs/sha256', t.context.busyboxDigest.slice(7)), 'utf8')) as { config: { digest: string } }).config.digest;
  writeFileSync(join(y, 'blobs/sha256', cfg.slice(7)), '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  await refuse(y, /hashes to/, 'DIGEST_MISMATCH');
  await run('tar', ['-cf', join(bad, 'y.tar'), '-C', y, '.']);
  await refuse(join(bad, 'y.tar'), /hashes to/, 'DIGEST_MISMATCH');

  // not an image archive at all
  const other = join(bad, 'other.tar');
  writeFileSync(join(bad, 'hello.txt'), 'hello\n');
  await run('tar', ['-cf', other, '-C', bad, 'hello.txt']);
  await refuse(other, /not a docker-archive .* or an oci-archive/, 'ERR_ARCHIVE');
  writeFileSync(join(bad, 'noise'), Buffer.alloc(4096, 7));
  await refuse(join(bad, 'noise'), /not a readable image archive/, 'ERR_ARCHIVE');
  truncateSync(join(bad, 'noise'), 0);
  await refuse(join(bad, 'noise'), /empty/, 'ERR_ARCHIVE');
  await t.throwsAsync(Image.load(join(bad, 'missing.tar'), { root }), { message: /does not exist/ });
  await refuse(bad, /not an OCI layout directory/, 'ERR_ARCHIVE');
});

const cache = '/var/cache/nsbox-fixtures';
for (const [file, digest] of [
  ['busybox-docker.tar', undefined],
  ['busybox-oci.tar', 'sha256:f6beae823f7a60d67b3a5d1a72728788f4d45a5d0c5781adaa4a72f2d8d84fd6'],
] as const) {
  const absent = existsSync(join(cache, file)) ? undefined : `${join(cache, file)} is not here (the shared fixtures are not built on this machine)`;
  skipIf(reason ?? absent, test.serial)(`the shared fixture ${file} loads and runs`, async (t) => {
    const root = freshStore(t, file);
    const images = await Image.load(join(cache, file), { root, name: `fixture/${file.replace(/\W/g, '-')}` });
    t.is(images.length, 1);
    if (digest) t.is(images[0]!.digest, digest);
    const prev = process.env.NSBOX_ROOT;
    process.env.NSBOX_ROOT = root;
    t.teardown(() => (prev === undefined ? delete process.env.NSBOX_ROOT : (process.env.NSBOX_ROOT = prev)));
    t.is(await runIn(images[0]!.names.at(-1)!, ['/bin/echo', 'fixture-ok']), 'fixture-ok\n');
    t.deepEqual(tmpEmpty(root), []);
  });
}
