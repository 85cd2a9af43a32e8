/**
 * Push and the registry's manifest formats, against a real docker-registry on 127.0.0.1: a registry
 * that refuses OCI manifests (a proxy here in front of the real one answers 415 to every OCI
 * manifest or index PUT, as registries without OCI support do; everything else goes through to the
 * registry, which stores what nsbox sends): the image goes as Docker schema2, and the next push goes
 * so at once. A manifest the registry rejects: a clear error, the store as it was, and nothing left
 * that the next push trips over. An image with two platforms (each pulled from an index skopeo
 * pushed) pushed as an index holding both, or as a Docker manifest list where OCI is refused.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import dc from 'node:diagnostics_channel';
import http, { type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Container } from '../../lib/container.js';
import { Engine } from '../../lib/engine/index.js';
import { NotFoundError } from '../../lib/errors.js';
import { Image } from '../../lib/image/image.js';
import { RegistryClient, RegistryError } from '../../lib/image/registry/index.js';
import { Store } from '../../lib/storage/index.js';
import { collect, rootfs, skipIf } from './_helpers.js';
import { bin } from './api-fixture.js';
import { buildImages, pushImages, registryUnavailable, startRegistry, type Registry } from '../fixtures/registry.js';

interface Ctx {
  dir: string;
  root: string;
  reg: Registry;
  tar: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = registryUnavailable();
const rtest = skipIf(reason, test.serial);

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_TYPES = [OCI_MANIFEST, OCI_INDEX];
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

test.before(async (t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'nsbox-push-format-'));
  t.context.root = join(t.context.dir, 'root');
  process.env['DOCKER_CONFIG'] = join(t.context.dir, 'docker-config');
  t.context.reg = await startRegistry();
  t.context.tar = join(t.context.dir, 'rootfs.tar');
  const r = spawnSync('tar', ['-C', rootfs(), '-cf', t.context.tar, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
});
test.after.always(async (t) => {
  await t.context.reg?.stop();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

interface Seen {
  method: string;
  url: string;
  type: string;
  status: number;
}

/**
 * An HTTP proxy to the registry. `refuse(req)` returns the status and Distribution error to answer
 * a request with instead of passing it on; `seen` lists every request and the status it got.
 * `hold(req)` true: the request is neither answered nor passed on (the test watches its end).
 */
type Answer = { status: number; code?: string; message?: string; detail?: string } | undefined;
async function gate(upstream: Registry, refuse: (method: string, url: string, type: string) => Answer, hold?: (method: string, url: string, res: http.ServerResponse) => boolean) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const method = req.method ?? '';
    const url = req.url ?? '';
    const type = req.headers['content-type'] ?? '';
    if (hold?.(method, url, res)) {
      req.resume();
      return;
    }
    const no = refuse(method, url, type);
    if (no) {
      req.resume();
      seen.push({ method, url, type, status: no.status });
      res.writeHead(no.status, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
      res.end(no.code ? JSON.stringify({ errors: [{ code: no.code, message: no.message, detail: no.detail }] }) : undefined);
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: upstream.port, method, path: url, headers: req.headers }, (r) => {
      seen.push({ method, url, type, status: r.statusCode ?? 0 });
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    seen,
    manifestPuts: () => seen.filter((s) => s.method === 'PUT' && s.url.includes('/manifests/')),
    stop: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A registry that takes no OCI manifest: 415 as Distribution writes its errors. */
const noOci = (method: string, url: string, type: string) =>
  method === 'PUT' && url.includes('/manifests/') && OCI_TYPES.includes(type)
    ? { status: 415, code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: `unsupported manifest media type ${type}` }
    : undefined;

/** What the registry itself serves for `ref` (skopeo, straight to the registry): the raw manifest, its digest, its JSON. */
function inspectRaw(ref: string): { digest: string; json: { mediaType: string; config?: { mediaType: string }; layers?: Array<{ mediaType: string; digest: string }>; manifests?: Array<{ mediaType: string; digest: string; platform?: { architecture: string } }> } } {
  const r = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'buffer' });
  if (r.status !== 0) throw new Error(`skopeo inspect ${ref}: ${r.stderr.toString()}`);
  return { digest: `sha256:${createHash('sha256').update(r.stdout).digest('hex')}`, json: JSON.parse(r.stdout.toString('utf8')) };
}

/** The CLI without blocking this process (the proxy it goes through runs here). */
async function cliAsync(root: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, NSBOX_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
  const [stdout, stderr, status] = await Promise.all([collect(child.stdout), collect(child.stderr), new Promise<number | null>((r) => child.once('close', r))]);
  return { status, stdout, stderr };
}

async function runIn(root: string, image: string, command: string[]): Promise<string> {
  const c = await Container.run({ image, imageRoot: root, pull: 'never', command });
  try {
    const [stdout, , status] = await Promise.all([collect(c.stdout), collect(c.stderr), c.wait()]);
    if (status.exitCode !== 0) throw new Error(`${command.join(' ')} exited ${status.exitCode}`);
    return stdout;
  } finally {
    await c.remove();
  }
}

rtest('a registry that refuses OCI manifests (415): the image goes as Docker schema2, once refused; the next push goes so at once; pulled back, it runs', async (t) => {
  const { reg, root, dir } = t.context;
  const proxy = await gate(reg, noOci);
  t.teardown(() => proxy.stop());
  // An import records provenance: an OCI image manifest in an OCI index with an attestation.
  const image = await Image.import(t.context.tar, { name: `${proxy.host}/app:1`, root });
  t.is(image.record.mediaType, OCI_MANIFEST);
  t.truthy(image.record.index, 'the image has an index (its provenance)');

  const cli = await cliAsync(root, ['push', `${proxy.host}/app:1`]);
  t.is(cli.status, 0, cli.stderr);
  t.regex(cli.stderr, new RegExp(`WARNING: ${proxy.host.replace(/\./g, '\\.')} takes no OCI manifests: the image went as Docker schema2, without its provenance attestation`));
  const digest = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(cli.stdout)?.[1] ?? '';
  t.regex(digest, /^sha256:/, cli.stdout);
  const puts = proxy.manifestPuts();
  t.true(puts.some((p) => OCI_TYPES.includes(p.type) && p.status === 415), 'an OCI manifest was tried and refused');
  const took = puts.filter((p) => p.status === 201);
  t.deepEqual([...new Set(took.map((p) => p.type))], [DOCKER_MANIFEST], 'then only Docker manifests went');
  t.is(took.at(-1)?.url, '/v2/app/manifests/1', 'the last under the tag');

  // What the registry holds, read by skopeo straight from it
  const held = inspectRaw(`${reg.host}/app:1`);
  t.is(held.digest, digest);
  t.is(held.json.mediaType, DOCKER_MANIFEST);
  t.is(held.json.config?.mediaType, 'application/vnd.docker.container.image.v1+json');
  t.deepEqual(held.json.layers?.map((l) => l.mediaType), ['application/vnd.docker.image.rootfs.diff.tar.gzip']);
  t.is(await new Store({ root }).distribution.manifestFormat(proxy.host), 'docker', 'the registry is remembered as taking Docker manifests');

  // The next push (another tag) sends no OCI manifest at all, and the same manifest
  await image.tag(`${proxy.host}/app:2`);
  const mark = proxy.manifestPuts().length;
  const second = await Image.push(`${proxy.host}/app:2`, { root });
  t.is(second.digest, digest);
  t.is(second.mediaType, DOCKER_MANIFEST);
  t.deepEqual(proxy.manifestPuts().slice(mark).map((p) => [p.type, p.status]), [[DOCKER_MANIFEST, 201]]);

  // Pulled back into an empty store (from the registry itself), it runs
  const elsewhere = join(dir, 'pulled');
  const pulled = await Image.pull(`${reg.host}/app:2`, { root: elsewhere });
  t.is(pulled.digest, digest);
  t.is(pulled.record.mediaType, DOCKER_MANIFEST);
  t.is((await runIn(elsewhere, `${reg.host}/app:2`, ['echo', 'ran'])).trim(), 'ran');

  // The preference is the refusing registry's: the same image pushed straight to the registry goes as OCI, with its provenance
  const direct = await Image.push(`${reg.host}/direct:1`, { root, image: `${proxy.host}/app:1` });
  t.is(direct.mediaType, OCI_INDEX);
  t.deepEqual(direct.warnings, []);
  t.is(inspectRaw(`${reg.host}/direct:1`).json.manifests?.length, 2, 'the image and its attestation');
});

/** What a refused push must leave as it was: the image records and tag journals (images.json), the store's temp dir, the tag's log. */
function localState(root: string, ref: string) {
  const log = spawnSync(process.execPath, [bin, 'image', 'log', ref], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: root } });
  const dist = join(root, 'distribution.json');
  return { images: readFileSync(join(root, 'images.json')), tmp: readdirSync(join(root, 'tmp')).sort(), log: log.stdout, distribution: existsSync(dist) ? readFileSync(dist, 'utf8') : '' };
}

rtest('a manifest the registry rejects: a clear error, the store as it was, and the next push goes through', async (t) => {
  const { reg, root } = t.context;
  let lie = true;
  let refuseAll = false;
  const proxy = await gate(reg, (method, url) => {
    // A manifest refused whatever its type (a registry's policy): 400 MANIFEST_INVALID to OCI and Docker alike
    if (refuseAll && method === 'PUT' && url.includes('/manifests/')) return { status: 400, code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: 'rejected by the registry\'s policy' };
    // The proxy says the repository has the config when it has not (to a HEAD, and to a mount of it
    // from the repository itself): nsbox does not upload it, and the real registry refuses the manifest
    if (lie && method === 'HEAD' && url === `/v2/bad/blobs/${config}`) return { status: 200 };
    if (lie && method === 'POST' && url === `/v2/bad/blobs/uploads/?${new URLSearchParams({ mount: config, from: 'bad' })}`) return { status: 201 };
    return undefined;
  });
  t.teardown(() => proxy.stop());
  const image = await Image.import(t.context.tar, { name: `${proxy.host}/bad:1`, root, changes: ['CMD ["echo", "rejected once"]'] });
  const config = image.id;
  const before = localState(root, `${proxy.host}/bad:1`);
  t.not(before.log, '');

  // 1. the registry itself refuses the manifest: a blob it names is not there
  const err = await t.throwsAsync(Image.push(`${proxy.host}/bad:1`, { root }), { instanceOf: RegistryError });
  t.is(err!.status, 400);
  t.is(err!.code, 'MANIFEST_BLOB_UNKNOWN');
  t.is(err!.message, `push ${proxy.host}/bad@${/@(sha256:[0-9a-f]{64})/.exec(err!.message)?.[1]}: blob unknown to registry: ${config} (400)`, 'the error names the blob the registry lacks');
  t.true(proxy.manifestPuts().some((p) => p.status === 400), 'the registry answered the manifest PUT with 400');
  t.deepEqual(localState(root, `${proxy.host}/bad:1`), before, 'images.json and distribution.json byte for byte, the tag\'s log, no temp file');
  t.false((await new Store({ root }).distribution.repositoriesOf(config)).includes(`${proxy.host}/bad`), 'the blob the proxy lied about is not remembered as there');
  await t.throwsAsync(new RegistryClient({ credentialSources: [] }).fetchManifest(`${reg.host}/bad:1`), { instanceOf: RegistryError }, 'no tag on the registry');
  t.is(await new Store({ root }).distribution.manifestFormat(proxy.host), undefined, 'not taken for a refusal of OCI');

  // 2. refused as OCI and as Docker schema2: both refusals in one error, nothing remembered, nothing changed
  lie = false;
  refuseAll = true;
  const both = await t.throwsAsync(Image.push(`${proxy.host}/bad:1`, { root }), { instanceOf: RegistryError });
  t.regex(both!.message, /manifest invalid: rejected by the registry's policy \(400\); and as Docker schema2: manifest invalid: rejected by the registry's policy \(400\)$/);
  t.is(await new Store({ root }).distribution.manifestFormat(proxy.host), undefined, 'a registry that refuses both is not remembered as taking Docker');
  t.deepEqual(localState(root, `${proxy.host}/bad:1`), before);

  // 3. what the refused pushes left on the registry does not trip the next push
  refuseAll = false;
  const ok = await Image.push(`${proxy.host}/bad:1`, { root });
  const held = inspectRaw(`${reg.host}/bad:1`);
  t.is(held.digest, ok.digest);
  t.is(held.json.mediaType, OCI_INDEX);
  const elsewhere = join(t.context.dir, 'bad-pulled');
  await Image.pull(`${reg.host}/bad:1`, { root: elsewhere });
  t.is((await runIn(elsewhere, `${reg.host}/bad:1`, ['sh', '-c', 'echo ran'])).trim(), 'ran');
});

rtest('a registry that refuses OCI manifests and then the tag: the push fails and the Docker-format fallback is not recorded; once the tag goes, it is', async (t) => {
  const { reg, root } = t.context;
  let refuseTag = true;
  const proxy = await gate(reg, (method, url, type) => {
    // The images' manifests go by digest (as Docker schema2, after the 415); the tag's PUT is refused
    if (refuseTag && method === 'PUT' && url === '/v2/fallback/manifests/1') return { status: 403, code: 'DENIED', message: 'requested access to the resource is denied' };
    return noOci(method, url, type);
  });
  t.teardown(() => proxy.stop());
  await Image.import(t.context.tar, { name: `${proxy.host}/fallback:1`, root, changes: ['CMD ["echo", "fallback"]'] });
  const before = localState(root, `${proxy.host}/fallback:1`);
  const err = await t.throwsAsync(Image.push(`${proxy.host}/fallback:1`, { root }), { instanceOf: RegistryError });
  t.is(err!.code, 'DENIED');
  const puts = proxy.manifestPuts();
  t.true(puts.some((p) => p.type === DOCKER_MANIFEST && p.status === 201), 'a manifest went as Docker schema2 before the tag was refused');
  t.true(puts.some((p) => p.url === '/v2/fallback/manifests/1' && p.status === 403), 'the tag was refused');
  t.is(await new Store({ root }).distribution.manifestFormat(proxy.host), undefined, 'a failed push records no format');
  t.deepEqual(localState(root, `${proxy.host}/fallback:1`), before, 'images.json and distribution.json byte for byte, the tag\'s log, no temp file');

  refuseTag = false;
  const ok = await Image.push(`${proxy.host}/fallback:1`, { root });
  t.is(ok.mediaType, DOCKER_MANIFEST);
  t.is(inspectRaw(`${reg.host}/fallback:1`).digest, ok.digest);
  t.is(await new Store({ root }).distribution.manifestFormat(proxy.host), 'docker', 'recorded once the tag went');
});

rtest('a push that fails on one manifest PUT stops its other requests and returns only once they ended; nothing changed locally', async (t) => {
  const { reg, root } = t.context;
  // The first manifest PUT (the image's or its attestation's, both by digest) is held unanswered;
  // the second is refused: the push fails while the first is on its way.
  let held: http.ServerResponse | undefined;
  const proxy = await gate(reg, (method, url) => {
    if (held && method === 'PUT' && url.startsWith('/v2/stops/manifests/sha256:')) return { status: 403, code: 'DENIED', message: 'requested access to the resource is denied' };
    return undefined;
  }, (method, url, res) => {
    if (held || method !== 'PUT' || !url.startsWith('/v2/stops/manifests/sha256:')) return false;
    held = res;
    return true;
  });
  t.teardown(() => proxy.stop());
  await Image.import(t.context.tar, { name: `${proxy.host}/stops:1`, root, changes: ['CMD ["echo", "stops"]'] });
  const before = localState(root, `${proxy.host}/stops:1`);
  const err = await t.throwsAsync(Image.push(`${proxy.host}/stops:1`, { root }), { instanceOf: RegistryError });
  t.is(err!.code, 'DENIED');
  t.truthy(held, 'a manifest PUT was on its way when the other was refused');
  // the held request was given up by the push before it returned (its connection closed), not left running
  t.true(held!.destroyed || held!.socket === null || held!.socket.destroyed || (await new Promise<boolean>((r) => held!.once('close', () => r(true)))));
  t.deepEqual(localState(root, `${proxy.host}/stops:1`), before, 'images.json and distribution.json byte for byte, the tag\'s log, no temp file');
  await t.throwsAsync(new RegistryClient({ credentialSources: [] }).fetchManifest(`${reg.host}/stops:1`), { instanceOf: RegistryError }, 'no tag on the registry');
});

rtest('a push of an image that is not here: NotFoundError, and the registry ping the push sent at its start is given up, not left waiting on a registry that does not answer', async (t) => {
  const { reg, root } = t.context;
  // The push pings the registry beside its store reads; this proxy never answers the ping.
  const proxy = await gate(reg, () => undefined, (method, url) => method === 'GET' && url === '/v2/');
  t.teardown(() => proxy.stop());
  const pings: ClientRequest[] = [];
  const onStart = (m: unknown) => {
    const req = (m as { request: ClientRequest }).request;
    if (req.path !== '/v2/' || req.getHeader('host') !== proxy.host) return;
    pings.push(req);
    req.on('error', (err) => ended.push(err));
  };
  const ended: Error[] = [];
  dc.subscribe('http.client.request.start', onStart);
  t.teardown(() => dc.unsubscribe('http.client.request.start', onStart));
  await t.throwsAsync(Image.push(`${proxy.host}/absent:1`, { root }), { instanceOf: NotFoundError, message: /does not exist locally/ });
  t.is(pings.length, 1, 'the ping went before the store was read');
  t.true(pings[0]!.destroyed, 'ended before the push returned');
  t.is(ended[0]?.name, 'AbortError', 'given up by the push, not by its timeout');
});

rtest('an image with two platforms (linux/amd64 and linux/arm64, pulled each) is pushed as an index holding both; as a Docker manifest list where OCI is refused', async (t) => {
  const { reg, root, dir } = t.context;
  const images = await buildImages(rootfs());
  t.teardown(() => images.cleanup());
  const seeded = await pushImages(images, reg.host);
  const source = `${reg.host}/multi:1`;
  const arm = await Image.pull(source, { root, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const amd = await Image.pull(source, { root, platform: { os: 'linux', architecture: 'amd64' } });
  t.is(arm.digest, seeded.digests.arm64);
  t.is(amd.digest, seeded.digests.busybox);
  t.is(amd.record.index, seeded.digests.index);

  const pushed = await Image.push(`${reg.host}/multi-copy:1`, { root, image: source });
  t.is(pushed.mediaType, OCI_INDEX);
  const held = inspectRaw(`${reg.host}/multi-copy:1`);
  t.is(held.digest, pushed.digest);
  t.is(held.digest, seeded.digests.index, 'the index went as it came');
  t.deepEqual(held.json.manifests?.map((m) => [m.digest, m.platform?.architecture]), [[seeded.digests.busybox, 'amd64'], [seeded.digests.arm64, 'arm64']]);
  // skopeo copies both platforms from it
  const oci = join(dir, 'multi-oci');
  const copy = spawnSync('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/multi-copy:1`, `oci:${oci}:m`], { encoding: 'utf8' });
  t.is(copy.status, 0, copy.stderr);
  // pulled into an empty store: the host's platform, as docker; the other by --platform
  const elsewhere = join(dir, 'multi-pulled');
  t.is((await Image.pull(`${reg.host}/multi-copy:1`, { root: elsewhere })).digest, seeded.digests.busybox);
  t.is((await runIn(elsewhere, `${reg.host}/multi-copy:1`, ['echo', 'amd64 ran'])).trim(), 'amd64 ran');
  t.is((await Image.pull(`${reg.host}/multi-copy:1`, { root: elsewhere, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } })).digest, seeded.digests.arm64);

  // Where OCI is refused: a Docker manifest list of both, each manifest Docker schema2
  const proxy = await gate(reg, noOci);
  t.teardown(() => proxy.stop());
  const listed = await Image.push(`${proxy.host}/multi-docker:1`, { root, image: source });
  t.is(listed.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
  const list = inspectRaw(`${reg.host}/multi-docker:1`);
  t.is(list.digest, listed.digest);
  t.deepEqual(list.json.manifests?.map((m) => [m.mediaType, m.platform?.architecture]), [[DOCKER_MANIFEST, 'amd64'], [DOCKER_MANIFEST, 'arm64']]);
  for (const m of list.json.manifests ?? []) {
    const one = inspectRaw(`${reg.host}/multi-docker@${m.digest}`);
    t.is(one.json.mediaType, DOCKER_MANIFEST);
    t.is(one.json.config?.mediaType, 'application/vnd.docker.container.image.v1+json');
  }
  const fromList = join(dir, 'list-pulled');
  await Image.pull(`${reg.host}/multi-docker:1`, { root: fromList });
  t.is((await runIn(fromList, `${reg.host}/multi-docker:1`, ['echo', 'from the list'])).trim(), 'from the list');

  // skopeo's two-platform layout loaded: every platform kept with the index (the other unnamed),
  // pushed back as the index; prune leaves the other platform, rmi removes both
  const loadedRoot = join(dir, 'loaded');
  const loaded = await Image.load(oci, { root: loadedRoot, name: `${reg.host}/loaded:1` });
  t.deepEqual(loaded.map((i) => [i.digest, i.record.index]), [[seeded.digests.busybox, seeded.digests.index]], 'one image told: the host\'s');
  const records = async () => (await Image.list({ root: loadedRoot })).map((i) => [i.digest, i.names.length, i.record.index]).sort();
  t.deepEqual(await records(), [[seeded.digests.busybox, 1, seeded.digests.index], [seeded.digests.arm64, 0, seeded.digests.index]].sort());
  const again = await Image.push(`${reg.host}/loaded:1`, { root: loadedRoot });
  t.is(again.digest, seeded.digests.index, 'the index went as loaded');
  const engine = await Engine.open({ root: loadedRoot });
  t.deepEqual((await engine.images.listed()).map((i) => i.digest), [seeded.digests.busybox], '`images` lists the named image, not its other platform');
  t.is((await engine.images.listed({ all: true })).length, 2, '`images -a` lists both');
  t.deepEqual((await engine.images.prune()).removed, [], 'the other platform of a named image is not dangling');
  t.is((await records()).length, 2);
  const removed = await engine.images.remove(`${reg.host}/loaded:1`);
  t.true(removed.deleted.includes(seeded.digests.arm64), 'removed with its index');
  t.deepEqual(await records(), []);
  // the other platform left alone (its named image untagged elsewhere): dangling, pruned
  await Image.load(oci, { root: loadedRoot, name: `${reg.host}/loaded:1` });
  await new Store({ root: loadedRoot }).images.untag(`${reg.host}/loaded:1`);
  t.is((await engine.images.prune()).removed.length, 1, 'one prune removes the dangling image');
  t.deepEqual(await records(), [], 'and the other platform with it');
  // prune -a counts the other platform's size too
  await Image.load(oci, { root: loadedRoot, name: `${reg.host}/loaded:1` });
  const both = (await Image.list({ root: loadedRoot })).reduce((n, i) => n + i.size, 0);
  const pruned = await engine.images.prune({ all: true });
  t.is(pruned.removed.length, 1);
  t.is(pruned.spaceReclaimed, both, 'space reclaimed: both platforms');
  t.deepEqual(await records(), []);
});
