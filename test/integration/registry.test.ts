/**
 * The registry client against a real docker-registry on 127.0.0.1 (open, and a twin that redirects
 * blobs to a plain file server), with images this suite builds from busybox and pushes with skopeo:
 * OCI and Docker schema2 manifests, an OCI index and a Docker manifest list, by-digest pulls, and
 * the failures a pull meets (unknown image, registry down, tampered and truncated content).
 */
import { createHash } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { parseReference } from '../../lib/image/reference.js';
import { DigestMismatchError, RegistryClient, RegistryError, type BlobProgress, type ResolvedImage } from '../../lib/image/registry/index.js';
import { DigestMismatchError as TheDigestMismatchError } from '../../lib/errors.js';
import { DigestMismatchError as StoreDigestMismatchError } from '../../lib/storage/index.js';
import { rootfs, skipIf } from './_helpers.js';
import {
  buildImages, freePort, pushImages, registryUnavailable, startDamagingProxy, startFileServer, startRegistry,
  type BuiltImages, type FileServer, type Registry, type SeededImages,
} from '../fixtures/registry.js';

interface Ctx {
  reg: Registry;
  redirect: Registry;
  files: FileServer;
  images: BuiltImages;
  seeded: SeededImages;
  client: RegistryClient;
  tmp: string;
}

const test = anyTest as TestFn<Ctx>;
const reason = registryUnavailable();
const rtest = skipIf(reason, test);

const RETRY = { retries: 2, delayMs: 20 };
const newClient = () => new RegistryClient({ credentialSources: [], retry: RETRY });
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const leftovers = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

// The shared seeded registry (../shared/registry, 127.0.0.1:5000) when it runs: the suite must pass against it too.
const SEEDED = '127.0.0.1:5000';
const SEEDED_AUTH = '127.0.0.1:5001';
const SEEDED_REDIRECT = '127.0.0.1:5002';
/** Why the shared seeded registry on `host` cannot be tested, or undefined when it answers. */
const seededWhy = async (host: string) =>
  reason ??
  ((await newClient().ping(host).then(() => true, (e: unknown) => e instanceof RegistryError && e.code === 'UNAUTHORIZED'))
    ? undefined
    : `nothing answers on ${host} (start ../shared/registry/registry-up and seed-images)`);
const seededTest = skipIf(await seededWhy(SEEDED), test);
const seededAuthTest = skipIf(await seededWhy(SEEDED_AUTH), test);
const seededRedirectTest = skipIf(await seededWhy(SEEDED_REDIRECT), test);

test.before(async (t) => {
  if (reason) return;
  const tmp = mkdtempSync(join(tmpdir(), 'nsbox-registry-test-'));
  t.context.tmp = tmp;
  t.context.reg = await startRegistry();
  t.context.files = await startFileServer(t.context.reg.storage);
  t.context.redirect = await startRegistry({ storage: t.context.reg.storage, redirectBaseUrl: t.context.files.baseUrl });
  t.context.images = await buildImages(rootfs());
  t.context.seeded = await pushImages(t.context.images, t.context.reg.host);
  t.context.client = newClient();
});

test.after.always(async (t) => {
  await t.context.redirect?.stop();
  await t.context.reg?.stop();
  await t.context.files?.stop();
  t.context.images?.cleanup();
  if (t.context.tmp) rmSync(t.context.tmp, { recursive: true, force: true });
});

function scratch(t: { context: Ctx; teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(t.context.tmp, 'dl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

rtest('resolves an OCI manifest and its config', async (t) => {
  const { reg, seeded, client } = t.context;
  const r = await client.resolve(`${reg.host}/busybox:1`, { platform: 'linux/amd64' });
  t.is(r.digest, seeded.digests.busybox);
  t.is(r.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  t.is(sha256(r.manifestBytes), r.digest);
  t.is(sha256(r.configBytes), r.manifest.config.digest);
  t.is(r.index, undefined);
  t.is(r.manifest.layers.length, 1);
  t.is(r.config.os, 'linux');
  t.is(r.config.architecture, 'amd64');
  t.deepEqual(r.config.config?.Cmd, ['sh']);
  t.is(r.reference.toString(), `${reg.host}/busybox:1@${seeded.digests.busybox}`);
});

rtest('resolves a Docker schema2 manifest (sent every Accept type, so no schema1 rewrite)', async (t) => {
  const { reg, seeded, client } = t.context;
  const r = await client.resolve(`${reg.host}/busybox:docker`, { platform: 'linux/amd64' });
  t.is(r.digest, seeded.digests.busyboxDocker);
  t.is(r.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  t.is(r.manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json');
  t.deepEqual(r.config.config?.Cmd, ['sh']);
});

rtest('a multi-layer image resolves with its layers and config defaults', async (t) => {
  const { reg, seeded, client } = t.context;
  const r = await client.resolve(`${reg.host}/layered:1`, { platform: 'linux/amd64' });
  t.is(r.digest, seeded.digests.layered);
  t.is(r.manifest.layers.length, 3);
  t.is(r.config.rootfs.diff_ids.length, 3);
  t.is(r.config.config?.WorkingDir, '/data');
  t.deepEqual(r.config.config?.Entrypoint, ['/bin/cat']);
});

for (const [name, tag, key] of [['OCI index', 'multi:1', 'index'], ['Docker manifest list', 'multi:docker', 'list']] as const) {
  rtest(`${name}: chooses the platform`, async (t) => {
    const { reg, seeded, client } = t.context;
    const amd = await client.resolve(`${reg.host}/${tag}`, { platform: 'linux/amd64' });
    t.is(amd.index?.digest, seeded.digests[key]);
    t.is(sha256(amd.index!.bytes), seeded.digests[key]);
    t.is(amd.digest, key === 'index' ? seeded.digests.busybox : seeded.digests.busyboxDocker);
    t.is(amd.config.architecture, 'amd64');
    t.is(amd.reference.digest, seeded.digests[key]);

    const arm = await client.resolve(`${reg.host}/${tag}`, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    t.is(arm.config.architecture, 'arm64');
    t.not(arm.digest, amd.digest);
    if (key === 'index') t.is(arm.digest, seeded.digests.arm64);
    // arm64 without a variant means v8
    t.is((await client.resolve(`${reg.host}/${tag}`, { platform: 'linux/arm64' })).digest, arm.digest);

    const err = await t.throwsAsync(client.resolve(`${reg.host}/${tag}`, { platform: 'linux/s390x' }), { instanceOf: RegistryError });
    t.is(err!.code, 'PLATFORM_UNKNOWN');
    t.regex(err!.message, /no image for platform linux\/s390x \(the index has: linux\/amd64, linux\/arm64\/v8\)/);
  });
}

rtest('the default platform is this host\'s', async (t) => {
  const { reg, seeded, client } = t.context;
  if (process.arch === 'x64') {
    t.is((await client.resolve(`${reg.host}/multi:1`)).digest, seeded.digests.busybox);
  } else if (process.arch === 'arm64') {
    t.is((await client.resolve(`${reg.host}/multi:1`)).digest, seeded.digests.arm64);
  } else {
    await t.throwsAsync(client.resolve(`${reg.host}/multi:1`), { message: /no image for platform/ });
  }
});

rtest('by-digest pulls: the index, a platform manifest, and a digest the registry lacks', async (t) => {
  const { reg, seeded, client } = t.context;
  const byIndex = await client.resolve(`${reg.host}/multi@${seeded.digests.index}`, { platform: 'linux/amd64' });
  t.is(byIndex.digest, seeded.digests.busybox);
  const byTagAndDigest = await client.resolve(`${reg.host}/busybox:1@${seeded.digests.busybox}`);
  t.is(byTagAndDigest.digest, seeded.digests.busybox);
  const missing = `sha256:${'0'.repeat(64)}`;
  const err = await t.throwsAsync(client.resolve(`${reg.host}/busybox@${missing}`), { instanceOf: RegistryError });
  t.is(err!.code, 'MANIFEST_UNKNOWN');
  t.is(err!.status, 404);
});

rtest('unknown image: a clear 404', async (t) => {
  const { reg, client } = t.context;
  const err = await t.throwsAsync(client.resolve(`${reg.host}/nope`), { instanceOf: RegistryError });
  t.is(err!.status, 404);
  t.regex(err!.code, /^(MANIFEST_UNKNOWN|NAME_UNKNOWN)$/);
  t.is(err!.message, `pull ${reg.host}/nope:latest: manifest unknown (404)`);
  t.is(err!.registry, reg.host);
  const tag = await t.throwsAsync(client.resolve(`${reg.host}/busybox:nope`), { instanceOf: RegistryError });
  t.is(tag!.message, `pull ${reg.host}/busybox:nope: manifest unknown (404)`);
});

rtest('registry down: ECONNREFUSED, said plainly', async (t) => {
  const port = await freePort();
  const err = await t.throwsAsync(newClient().resolve(`127.0.0.1:${port}/busybox:1`), { instanceOf: RegistryError });
  t.is(err!.code, 'ECONNREFUSED');
  t.is(err!.status, undefined);
  t.is(err!.message, `ping 127.0.0.1:${port}: registry 127.0.0.1:${port} is not reachable: ECONNREFUSED`);
});

rtest('fetchBlob: streams, verifies, renames; progress reaches the total', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const r = await client.resolve(`${reg.host}/busybox:1`, { platform: 'linux/amd64' });
  const layer = r.manifest.layers[0]!;
  const dest = join(dir, 'layer');
  const events: BlobProgress[] = [];
  await client.fetchBlob(r.reference, layer, dest, { onProgress: (p) => events.push(p) });
  const bytes = readFileSync(dest);
  t.is(bytes.length, layer.size);
  t.is(sha256(bytes), layer.digest);
  t.deepEqual(leftovers(dir), []);
  t.true(events.length >= 2);
  t.like(events.at(-1), { phase: 'done', done: layer.size, total: layer.size, digest: layer.digest });
  t.true(events.every((e) => e.done <= e.total));
});

rtest('fetchBlobs: every layer of a multi-layer image, two at a time', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const r = await client.resolve(`${reg.host}/layered:1`, { platform: 'linux/amd64' });
  const list = r.manifest.layers.map((descriptor, i) => ({ descriptor, destPath: join(dir, `layer${i}`) }));
  await client.fetchBlobs(r.reference, list, { concurrency: 2 });
  for (const { descriptor, destPath } of list) t.is(sha256(readFileSync(destPath)), descriptor.digest);
  t.deepEqual(leftovers(dir), []);
});

rtest('unknown blob: BLOB_UNKNOWN, nothing left behind', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const desc = { mediaType: 'application/octet-stream', digest: `sha256:${'1'.repeat(64)}`, size: 10 };
  const err = await t.throwsAsync(client.fetchBlob(`${reg.host}/busybox:1`, desc, join(dir, 'x')), { instanceOf: RegistryError });
  t.is(err!.code, 'BLOB_UNKNOWN');
  t.is(err!.status, 404);
  t.regex(err!.message, /^pull .*busybox:1: blob sha256:111111111111: blob unknown/);
  t.deepEqual(readdirSync(dir), []);
});

rtest('redirected blobs (307 to a plain file server): followed and verified; manifests stay on the registry', async (t) => {
  const { redirect, files, seeded } = t.context;
  const dir = scratch(t);
  const client = newClient();
  const before = files.requests.length;
  const r = await client.resolve(`${redirect.host}/layered:1`, { platform: 'linux/amd64' });
  t.is(r.digest, seeded.digests.layered);
  const layer = r.manifest.layers[0]!;
  await client.fetchBlob(r.reference, layer, join(dir, 'l0'));
  t.is(sha256(readFileSync(join(dir, 'l0'))), layer.digest);
  const served = files.requests.slice(before).map((q) => q.path);
  t.true(served.some((p) => p.includes(layer.digest.slice(7)) && p.endsWith('/data')), served.join('\n'));
  t.true(served.some((p) => p.includes(r.manifest.config.digest.slice(7))), 'the config blob came through the redirect too');
  t.false(served.some((p) => p.includes('/manifests/')));
});

rtest('tampered blob: DigestMismatchError, not retried, no file and no temp file', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const r = await client.resolve(`${reg.host}/busybox:1`, { platform: 'linux/amd64' });
  const layer = r.manifest.layers[0]!;
  const proxy = await startDamagingProxy(reg.host, layer.digest, 'tamper');
  t.teardown(() => proxy.stop());
  const via = parseReference(`${proxy.host}/busybox:1`);
  const err = await t.throwsAsync(newClient().fetchBlob(via, layer, join(dir, 'layer')), { instanceOf: DigestMismatchError });
  t.is(err!.code, 'DIGEST_MISMATCH');
  t.true(err instanceof TheDigestMismatchError && err instanceof StoreDigestMismatchError, 'one class for registry and store mismatches');
  t.is(err!.registry, proxy.host);
  t.is(err!.expected, layer.digest);
  t.not(err!.actual, layer.digest);
  t.regex(err!.message, /does not match its digest/);
  t.is(proxy.hits, 1);
  t.deepEqual(readdirSync(dir), []);
});

rtest('tampered manifest: by tag (against Docker-Content-Digest) and by digest', async (t) => {
  const { reg, seeded } = t.context;
  const byTag = await startDamagingProxy(reg.host, '1', 'tamper');
  t.teardown(() => byTag.stop());
  const e1 = await t.throwsAsync(newClient().resolve(`${byTag.host}/busybox:1`), { instanceOf: DigestMismatchError });
  t.regex(e1!.message, /differs from the sha256:5d|differs from the sha256:/);
  const byDigest = await startDamagingProxy(reg.host, seeded.digests.busybox, 'tamper');
  t.teardown(() => byDigest.stop());
  const e2 = await t.throwsAsync(newClient().resolve(`${byDigest.host}/busybox@${seeded.digests.busybox}`), { instanceOf: DigestMismatchError });
  t.is(e2!.expected, seeded.digests.busybox);
});

rtest('truncated blob: retried, then a clear TRUNCATED error and no temp file', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const r = await client.resolve(`${reg.host}/busybox:1`, { platform: 'linux/amd64' });
  const layer = r.manifest.layers[0]!;
  const proxy = await startDamagingProxy(reg.host, layer.digest, 'truncate');
  t.teardown(() => proxy.stop());
  const events: BlobProgress[] = [];
  const err = await t.throwsAsync(
    newClient().fetchBlob(`${proxy.host}/busybox:1`, layer, join(dir, 'layer'), { onProgress: (p) => events.push(p) }),
    { instanceOf: RegistryError },
  );
  t.is(err!.code, 'TRUNCATED');
  t.regex(err!.message, /was cut short: received \d+ of \d+ bytes \(after 3 attempts\)/);
  t.is(proxy.hits, RETRY.retries + 1);
  t.is(events.filter((e) => e.phase === 'retrying').length, RETRY.retries);
  t.deepEqual(readdirSync(dir), []);
});

rtest('truncated once: the retry resumes and the blob verifies', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const r = await client.resolve(`${reg.host}/busybox:1`, { platform: 'linux/amd64' });
  const layer = r.manifest.layers[0]!;
  const proxy = await startDamagingProxy(reg.host, layer.digest, 'truncate', 1);
  t.teardown(() => proxy.stop());
  await newClient().fetchBlob(`${proxy.host}/busybox:1`, layer, join(dir, 'layer'));
  t.is(proxy.hits, 1);
  // The second request resumes where the first was cut (the registry answers Range with 206).
  t.is(proxy.ranges.length, 2);
  t.is(proxy.ranges[0], '');
  t.regex(proxy.ranges[1]!, /^bytes=[1-9]\d*-$/);
  t.is(sha256(readFileSync(join(dir, 'layer'))), layer.digest);
  t.deepEqual(leftovers(dir), []);
});

rtest('an aborted download leaves nothing behind', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const r = await client.resolve(`${reg.host}/busybox:1`, { platform: 'linux/amd64' });
  const ac = new AbortController();
  ac.abort();
  await t.throwsAsync(client.fetchBlob(r.reference, r.manifest.layers[0]!, join(dir, 'layer'), { signal: ac.signal }));
  t.deepEqual(readdirSync(dir), []);
});

async function download(client: RegistryClient, r: ResolvedImage, dir: string) {
  const blobs = [r.manifest.config, ...r.manifest.layers].map((descriptor, i) => ({ descriptor, destPath: join(dir, `b${i}`) }));
  await client.fetchBlobs(r.reference, blobs);
  return blobs.map((b) => ({ descriptor: b.descriptor, source: b.destPath }));
}

rtest('push: cross-repo mount, then only missing blobs, monolithic and chunked', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const src = await client.resolve(`${reg.host}/layered:1`, { platform: 'linux/amd64' });
  const blobs = await download(client, src, dir);
  const manifest = { bytes: src.manifestBytes, mediaType: src.mediaType };

  const mounted = await client.pushImage(`${reg.host}/copies/mounted:1`, { manifest, blobs, mountFrom: 'layered' });
  t.is(mounted.digest, src.digest);
  t.is(mounted.mounted.length, 4);
  t.deepEqual(mounted.pushed, []);

  const fresh = await client.pushImage(`${reg.host}/copies/fresh:1`, { manifest, blobs });
  t.is(fresh.pushed.length, 4);
  const again = await client.pushImage(`${reg.host}/copies/fresh:2`, { manifest, blobs });
  t.deepEqual(again.pushed, []);
  t.is(again.skipped.length, 4);

  const chunked = await client.pushImage(`${reg.host}/copies/chunked:1`, { manifest, blobs, chunkSize: 64 * 1024 });
  t.is(chunked.pushed.length, 4);
  // What was pushed pulls back identical.
  for (const name of ['copies/mounted:1', 'copies/fresh:2', 'copies/chunked:1']) {
    const back = await newClient().resolve(`${reg.host}/${name}`);
    t.is(back.digest, src.digest, name);
    const out = join(dir, `${name.replace(/\W/g, '_')}-l0`);
    await newClient().fetchBlob(back.reference, back.manifest.layers[0]!, out);
    t.true(existsSync(out));
  }
  t.true(await client.hasBlob(`${reg.host}/copies/fresh:1`, src.manifest.layers[2]!.digest));
  t.false(await client.hasBlob(`${reg.host}/copies/fresh:1`, `sha256:${'2'.repeat(64)}`));
});

rtest('the first requests of a client, all at once, share one GET /v2/; one caller aborting does not fail the others', async (t) => {
  const { reg } = t.context;
  const pings: string[] = [];
  // Only this test's clients (the suite's other tests run at the same time).
  const agent = `nsbox-ping-test-${process.pid}`;
  const onStart = ({ request }: { request: { method: string; path: string; host: string; getHeader(n: string): unknown } }) => {
    if (request.method === 'GET' && request.path === '/v2/' && request.getHeader('user-agent') === agent) pings.push(request.host);
  };
  dc.subscribe('http.client.request.start', onStart as (m: unknown) => void);
  t.teardown(() => dc.unsubscribe('http.client.request.start', onStart as (m: unknown) => void));
  const absent = (i: number) => `sha256:${String(i).repeat(64)}`;
  const client = () => new RegistryClient({ credentialSources: [], retry: RETRY, userAgent: agent });
  const c = client();
  t.deepEqual(await Promise.all([1, 2, 3, 4, 5].map((i) => c.hasBlob(`${reg.host}/layered:1`, absent(i)))), [false, false, false, false, false]);
  t.is(pings.length, 1);

  pings.length = 0;
  const c2 = client();
  const stop = new AbortController();
  const first = c2.hasBlob(`${reg.host}/layered:1`, absent(6), stop.signal);
  const others = Promise.all([7, 8].map((i) => c2.hasBlob(`${reg.host}/layered:1`, absent(i))));
  stop.abort();
  await t.throwsAsync(first);
  t.deepEqual(await others, [false, false]);
});

rtest('push: an index after its manifests, by digest', async (t) => {
  const { reg, client } = t.context;
  const dir = scratch(t);
  const amd = await client.resolve(`${reg.host}/multi:1`, { platform: 'linux/amd64' });
  const arm = await client.resolve(`${reg.host}/multi:1`, { platform: 'linux/arm64' });
  for (const [i, r] of [amd, arm].entries()) {
    const sub = join(dir, String(i));
    (await import('node:fs')).mkdirSync(sub);
    const blobs = await download(client, r, sub);
    await client.pushImage(`${reg.host}/copies/multi@${r.digest}`, { manifest: { bytes: r.manifestBytes, mediaType: r.mediaType }, blobs });
  }
  const digest = await client.pushManifest(`${reg.host}/copies/multi:1`, amd.index!.bytes, amd.index!.mediaType);
  t.is(digest, amd.index!.digest);
  t.is((await newClient().resolve(`${reg.host}/copies/multi:1`, { platform: 'linux/arm64' })).digest, arm.digest);
});

// The seeded set (see SEEDED above).
seededTest('shared seeded registry: layered:1 resolves to its recorded digest and every blob verifies', async (t) => {
  const client = newClient();
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-seeded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await client.resolve(`${SEEDED}/layered:1`, { platform: 'linux/amd64' });
  t.is(r.digest, 'sha256:015a7ffb9a5311d98a89a09484dda416058080706903cfff83b9f305dd4cd888');
  t.is(r.config.config?.User, 'app');
  await download(client, r, dir);
  const list = await client.resolve(`${SEEDED}/multiarch:1-docker`, { platform: 'linux/amd64' });
  t.is(list.digest, 'sha256:d201d015ef3f73be4a8f958dab23f869deeb4064c1eee1c01ae04ab3c1afb015');
});

seededRedirectTest('shared seeded registry: busybox:1.35 through the redirecting :5002', async (t) => {
  const client = newClient();
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-seeded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await client.resolve(`${SEEDED_REDIRECT}/busybox:1.35`, { platform: 'linux/amd64' });
  t.is(r.digest, 'sha256:f6beae823f7a60d67b3a5d1a72728788f4d45a5d0c5781adaa4a72f2d8d84fd6');
  await download(client, r, dir);
});

seededAuthTest('shared seeded registry: multiarch:1 on the htpasswd :5001', async (t) => {
  const client = new RegistryClient({ auth: { username: 'nsbox', password: 'nsbox-test' }, credentialSources: [], retry: RETRY });
  const r = await client.resolve(`${SEEDED_AUTH}/multiarch:1`, { platform: 'linux/arm64/v8' });
  t.is(r.index?.digest, 'sha256:b0367ed53ba7f15d4cd1efae9700e9f6376ae510b528e29aad432b7cdf71b62e');
  t.is(r.config.architecture, 'arm64');
  await t.throwsAsync(newClient().resolve(`${SEEDED_AUTH}/multiarch:1`), { instanceOf: RegistryError, message: /unauthorized/ });
});
