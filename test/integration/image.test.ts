/**
 * Images end to end against a real registry (Debian's docker-registry on 127.0.0.1, images this
 * suite builds from busybox and pushes with skopeo): pull into an empty store, run containers from
 * images with their config as defaults, whiteouts and opaque dirs through overlayfs, tags, removal.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Container, DigestMismatchError, Image, InvalidStateError, NotFoundError, RegistryError } from '../../lib/index.js';
import { DigestMismatchError as TheDigestMismatchError } from '../../lib/errors.js';
import { RegistryClient } from '../../lib/image/registry/index.js';
import { collect, isRoot, rootfs, skipIf } from './_helpers.js';
import { startDamagingProxy, startImageRegistry, type ImageRegistry, registryUnavailable } from '../fixtures/registry.js';

interface Ctx extends ImageRegistry {
  root: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = registryUnavailable() ?? (isRoot ? undefined : 'needs root');
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  t.context.root = mkdtempSync(join(tmpdir(), 'nsbox-store-'));
  Object.assign(t.context, await startImageRegistry(rootfs()));
});

test.after.always(async (t) => {
  await t.context.stop?.();
  if (t.context.root) rmSync(t.context.root, { recursive: true, force: true });
});

const opts = (t: { context: Ctx }) => ({ root: t.context.root });

rtest('pull into an empty store, then list and get', async (t) => {
  const ref = `${t.context.reg.host}/busybox:1`;
  const phases = new Set<string>();
  const image = await Image.pull(ref, { ...opts(t), onProgress: (p) => phases.add(p.phase) });
  t.true(phases.has('resolved') && phases.has('unpacked'), [...phases].join(','));
  t.deepEqual(image.names, [ref]);
  t.regex(image.digest, /^sha256:[0-9a-f]{64}$/);
  t.is(image.layers.length, 1);
  t.true(image.size > 100_000);
  t.deepEqual(image.config.config?.Cmd, ['sh']);
  t.true(image.history().length >= 1);
  const again = await Image.get(ref, opts(t));
  t.is(again.digest, image.digest);
  t.true((await Image.list(opts(t))).some((i) => i.digest === image.digest));
  // A second pull finds everything in the store.
  const exists: string[] = [];
  await Image.pull(ref, { ...opts(t), onProgress: (p) => p.phase === 'exists' && exists.push(p.id) });
  t.is(exists.length, 1);
  t.deepEqual(readdirSync(join(t.context.root, 'tmp')), [], 'nothing half-written');
});

rtest('run a container from an image: Entrypoint, Cmd, WorkingDir and Env as defaults; whiteouts and opaque dirs applied', async (t) => {
  const prev = process.env.NSBOX_ROOT;
  process.env.NSBOX_ROOT = t.context.root;
  t.teardown(() => (prev === undefined ? delete process.env.NSBOX_ROOT : (process.env.NSBOX_ROOT = prev)));
  const ref = `${t.context.reg.host}/layered:1`;
  await using c = await Container.run({ image: ref });
  const [out, status] = await Promise.all([collect(c.stdout), c.wait()]);
  t.deepEqual(status, { exitCode: 0, signal: null });
  t.is(out, 'kept\n', 'Entrypoint /bin/cat + Cmd /data/kept.txt');
  t.is(c.image?.ref, ref);
  await using d = await Container.run({ image: ref, entrypoint: ['/bin/sh', '-c'], command: ['pwd; ls /data; ls /opaque; echo $PATH'] });
  const [out2] = await Promise.all([collect(d.stdout), d.wait()]);
  const lines = out2.trim().split('\n');
  t.is(lines[0], '/data', 'WorkingDir');
  t.false(out2.includes('deleted.txt') || out2.includes('gone'), 'whiteouts hide files and directories');
  t.true(out2.includes('kept.txt'));
  t.true(out2.includes('from-layer3.txt') && !out2.includes('from-layer2.txt'), 'an opaque dir hides the layers below');
});

rtest('pull policies, multi-platform index, unknown images and registries', async (t) => {
  const prev = process.env.NSBOX_ROOT;
  process.env.NSBOX_ROOT = t.context.root;
  t.teardown(() => (prev === undefined ? delete process.env.NSBOX_ROOT : (process.env.NSBOX_ROOT = prev)));
  const multi = `${t.context.reg.host}/multi:1`;
  await t.throwsAsync(Container.run({ image: multi, command: ['true'], pull: 'never' }), { instanceOf: NotFoundError, message: /No such image/ });
  await using c = await Container.run({ image: multi, command: ['/bin/sh', '-c', 'test -e /ARCH || echo amd64-variant'] });
  const [out] = await Promise.all([collect(c.stdout), c.wait()]);
  t.is(out, 'amd64-variant\n', 'the index resolves to this host platform');
  const e = await t.throwsAsync(Image.pull(`${t.context.reg.host}/nope:latest`, opts(t)), { instanceOf: RegistryError });
  t.regex(e!.message, /manifest unknown|not found|404/i);
  await t.throwsAsync(Image.pull('127.0.0.1:1/x:1', opts(t)), { instanceOf: RegistryError, message: /not reachable|ECONNREFUSED/ });
  t.deepEqual(readdirSync(join(t.context.root, 'tmp')), [], 'nothing half-written after failures');
});

rtest('tag, remove refused while in use, then removal frees the layers', async (t) => {
  const prev = process.env.NSBOX_ROOT;
  process.env.NSBOX_ROOT = t.context.root;
  t.teardown(() => (prev === undefined ? delete process.env.NSBOX_ROOT : (process.env.NSBOX_ROOT = prev)));
  const ref = `${t.context.reg.host}/busybox:docker`;
  const image = await Image.pull(ref);
  await image.tag('nsbox-test/mine:v1');
  t.true((await Image.get('nsbox-test/mine:v1')).names.includes('docker.io/nsbox-test/mine:v1'));
  // Removing one of two names only untags.
  t.deepEqual(await Image.remove('nsbox-test/mine:v1'), { untagged: ['docker.io/nsbox-test/mine:v1'], deleted: [] });
  const c = await Container.run({ image: ref, command: ['/bin/sleep', '100'], stdio: 'ignore' });
  t.teardown(() => c.remove());
  await t.throwsAsync(Image.remove(ref), { instanceOf: InvalidStateError, message: /in use/ });
  await c.remove();
  const layerDirs = await image.layerDirs();
  const busybox1 = await Image.get(`${t.context.reg.host}/busybox:1`);
  const shared = (await busybox1.layerDirs())[0];
  const removed = await Image.remove(ref);
  t.true(removed.deleted.includes(image.digest));
  await t.throwsAsync(Image.get(ref), { instanceOf: NotFoundError });
  // The schema2 image has the same layer as busybox:1: still there; a layer only it used would be gone.
  for (const d of layerDirs) t.is(existsSync(d), d === shared);
});

rtest('pull with unpack: false fetches the content only; the first run unpacks', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-store-lazy-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const ref = `${t.context.reg.host}/layered:1`;
  const phases = new Set<string>();
  const image = await Image.pull(ref, { root, unpack: false, onProgress: (p) => phases.add(p.phase) });
  t.false(phases.has('unpacking'));
  t.deepEqual(readdirSync(join(root, 'layers')), [], 'nothing unpacked yet');
  const prev = process.env.NSBOX_ROOT;
  process.env.NSBOX_ROOT = root;
  t.teardown(() => (prev === undefined ? delete process.env.NSBOX_ROOT : (process.env.NSBOX_ROOT = prev)));
  await using c = await Container.run({ image: ref, pull: 'never' });
  const [out] = await Promise.all([collect(c.stdout), c.wait()]);
  t.is(out, 'kept\n');
  t.is(readdirSync(join(root, 'layers')).length, image.layers.length);
});

/** A fresh store, and busybox:1's layer descriptor as the test registry serves it. */
async function freshPull(t: { context: Ctx; teardown(fn: () => void): void }) {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-store-stream-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const r = await new RegistryClient({ credentialSources: [] }).resolve(`${t.context.reg.host}/busybox:1`);
  return { root, layer: r.manifest.layers[0]! };
}

rtest('a tampered layer blob: the streamed unpack stops, the pull fails with DigestMismatchError, neither blob nor layer is left', async (t) => {
  const { root, layer } = await freshPull(t);
  const proxy = await startDamagingProxy(t.context.reg.host, layer.digest, 'tamper');
  t.teardown(() => proxy.stop());
  const err = await t.throwsAsync(Image.pull(`${proxy.host}/busybox:1`, { root }), { instanceOf: DigestMismatchError });
  t.true(err instanceof TheDigestMismatchError, 'the one DigestMismatchError of lib/errors.ts');
  t.is(err!.expected, layer.digest, 'named as the blob mismatch it is, not as the corrupt gzip the unpack saw first');
  t.deepEqual(readdirSync(join(root, 'layers')), []);
  t.deepEqual(readdirSync(join(root, 'blobs', 'sha256')).filter((f) => f.includes(layer.digest.slice(7))), []);
  t.deepEqual(readdirSync(join(root, 'blobs', 'sha256')).filter((f) => f.endsWith('.tmp')), [], 'no temp file');
});

rtest('a layer download cut short resumes with Range, and the unpack that ran alongside carries on', async (t) => {
  const { root, layer } = await freshPull(t);
  const proxy = await startDamagingProxy(t.context.reg.host, layer.digest, 'truncate', 1);
  t.teardown(() => proxy.stop());
  const phases: string[] = [];
  const image = await Image.pull(`${proxy.host}/busybox:1`, { root, onProgress: (p) => p.id === layer.digest && phases.push(p.phase) });
  t.is(proxy.hits, 1);
  t.regex(proxy.ranges[1] ?? '', /^bytes=[1-9]\d*-$/, 'the second request resumed');
  t.true(phases.includes('retrying'));
  t.deepEqual(phases.slice(-3), ['done', 'unpacking', 'unpacked'], 'unpacked in the download\'s pass, not again from the file');
  const [dir] = await image.layerDirs();
  t.true(existsSync(join(dir!, 'bin', 'busybox')));
  t.true(existsSync(join(root, 'blobs', 'sha256', layer.digest.slice(7))), 'the blob is kept (push and save need it)');
});
