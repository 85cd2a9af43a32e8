/**
 * Push against a real docker-registry on 127.0.0.1 (started here, with its access log read to see
 * what was really uploaded): a built image pushed, pulled into an empty store and run; pushed again
 * with every layer already there; a child that uploads only its new layer; one digest for two
 * pushes; a push killed with SIGKILL mid-upload, then pushed again; skopeo reading what was pushed;
 * the docker CLI's push through `nsbox serve`; a push refused by an htpasswd registry.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import { Container } from '../../lib/container.js';
import { buildImage } from '../../lib/build/index.js';
import { Image } from '../../lib/image/image.js';
import type { PushProgress } from '../../lib/image/push.js';
import { RegistryClient, RegistryError } from '../../lib/image/registry/index.js';
import { Store } from '../../lib/storage/index.js';
import { collect, rootfs, skipIf } from './_helpers.js';
import { apiUnavailable, bin, cleanup, docker, startServe } from './api-fixture.js';
import { htpasswdUnavailable, makeHtpasswd, registryUnavailable, startRegistry, type Registry } from '../fixtures/registry.js';

interface Ctx {
  dir: string;
  root: string;
  reg: Registry;
  /** DOCKER_CONFIG for this suite: empty, so no credentials of the host's are used. */
  dockerConfig: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = registryUnavailable();
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'nsbox-push-'));
  t.context.root = join(t.context.dir, 'root');
  t.context.dockerConfig = join(t.context.dir, 'docker-config');
  mkdirSync(t.context.dockerConfig);
  process.env['DOCKER_CONFIG'] = t.context.dockerConfig;
  t.context.reg = await startRegistry();
  const tar = join(t.context.dir, 'rootfs.tar');
  const r = spawnSync('tar', ['-C', rootfs(), '-cf', tar, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  // A plain-tar layer, as a build step's is: push must gzip it.
  await Image.import(tar, { name: `${t.context.reg.host}/base:1`, root: t.context.root });
});
test.after.always(async (t) => {
  await t.context.reg?.stop();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

interface Hit {
  method: string;
  uri: string;
  status: number;
}
/** The registry's access log (`"PUT /v2/… HTTP/1.1" 201`), from line `from`. */
function accessLog(reg: Registry, from = 0): Hit[] {
  return reg.log().split('\n').flatMap((l) => {
    const m = /^\S+ - - \[[^\]]+\] "(\w+) (\S+) HTTP\/[\d.]+" (\d+)/.exec(l);
    return m ? [{ method: m[1]!, uri: m[2]!, status: Number(m[3]) }] : [];
  }).slice(from);
}
/** Digests of the blob uploads the registry completed. */
const uploaded = (hits: Hit[]) =>
  hits.filter((h) => h.method === 'PUT' && h.uri.includes('/blobs/uploads/') && h.status === 201).map((h) => decodeURIComponent(/[?&]digest=([^&]+)/.exec(h.uri)?.[1] ?? ''));
/** The blobs of the attestation manifests in the index the registry serves for `ref` (the provenance pushed with an image). */
async function attestationBlobs(ref: string): Promise<string[]> {
  const client = new RegistryClient({ credentialSources: [] });
  const top = await client.fetchManifest(ref);
  const index = top.json as { manifests?: Array<{ digest: string; size: number; mediaType: string; annotations?: Record<string, string> }> };
  const out: string[] = [];
  for (const m of index.manifests ?? []) {
    if (m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest') continue;
    const att = (await client.fetchManifest(ref, { expect: m })).json as { config: { digest: string }; layers: Array<{ digest: string }> };
    out.push(att.config.digest, ...att.layers.map((l) => l.digest));
  }
  return out;
}
const uploadSessions = (hits: Hit[]) => hits.filter((h) => h.method === 'POST' && h.uri.includes('/blobs/uploads/') && h.status === 202);

async function push(t: { context: Ctx }, ref: string, opts: { image?: string } = {}) {
  const events: PushProgress[] = [];
  const result = await Image.push(ref, { root: t.context.root, onProgress: (p) => events.push(p), ...opts });
  return { result, events, phases: (id: string) => events.filter((e) => e.id === id && e.phase !== 'pushing').map((e) => e.phase) };
}

async function runIn(root: string, image: string, command: string[]): Promise<string> {
  const c = await Container.run({ image, imageRoot: root, pull: 'never', ...(command.length ? { command } : {}) });
  try {
    const [stdout, , status] = await Promise.all([collect(c.stdout), collect(c.stderr), c.wait()]);
    if (status.exitCode !== 0) throw new Error(`${command.join(' ')} exited ${status.exitCode}`);
    return stdout;
  } finally {
    await c.remove();
  }
}

function cli(t: { context: Ctx }, args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NSBOX_ROOT: t.context.root, DOCKER_CONFIG: t.context.dockerConfig, ...env },
  });
}

/** The CLI without blocking this process (the proxy it goes through runs here). */
function cliAsync(t: { context: Ctx }, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, NSBOX_ROOT: t.context.root, DOCKER_CONFIG: t.context.dockerConfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return Promise.all([collect(child.stdout), collect(child.stderr), new Promise<number | null>((r) => child.once('close', r))]).then(([stdout, stderr, status]) => ({ status, stdout, stderr }));
}

rtest('a built image: pushed, pulled into an empty store, run; pushed again: every layer already exists, no upload', async (t) => {
  const { reg, root } = t.context;
  const ref = `${reg.host}/base:1`;
  const image = await Image.get(ref, { root });
  const layer = image.layers[0]!;
  t.is(layer.digest, layer.diffId, 'the imported layer is a plain tar');
  const mark = accessLog(reg).length;
  const first = await push(t, ref);
  t.deepEqual(first.phases(layer.diffId), ['preparing', 'pushed']);
  t.is(first.result.tag, '1');
  const hits = accessLog(reg, mark);
  const gz = first.result.layers[0]!.digest;
  t.not(gz, layer.diffId, 'the layer went gzipped');
  const provenance = await attestationBlobs(ref);
  t.is(provenance.length, 2, 'the provenance went with it (an attestation manifest: config and statement)');
  t.deepEqual(uploaded(hits).sort(), [gz, image.id, ...provenance].sort(), 'the layer and the config were uploaded, and the provenance');
  // the manifest was PUT after every blob upload
  const manifestAt = hits.findIndex((h) => h.method === 'PUT' && h.uri === '/v2/base/manifests/1');
  t.true(manifestAt > hits.findLastIndex((h) => h.uri.includes('/blobs/uploads/')));

  const empty = join(t.context.dir, 'empty-store');
  const pulled = await Image.pull(ref, { root: empty });
  t.is(pulled.digest, first.result.manifest, 'the image manifest, from the index pushed');
  t.not(first.result.digest, first.result.manifest, 'the tag names the index');
  t.is(pulled.layers[0]!.diffId, layer.diffId);
  t.is((await runIn(empty, ref, ['echo', 'pushed and pulled'])).trim(), 'pushed and pulled');

  const mark2 = accessLog(reg).length;
  const again = await push(t, ref);
  t.deepEqual(again.phases(layer.diffId), ['preparing', 'exists']);
  t.is(again.result.digest, first.result.digest, 'one image, one digest');
  const hits2 = accessLog(reg, mark2);
  t.deepEqual(uploaded(hits2), [], 'no blob upload completed');
  t.deepEqual(uploadSessions(hits2), [], 'no upload session opened');
  t.false(hits2.some((h) => h.uri.includes(gz)), 'the layer the store knows there cost no request: the manifest PUT is the check');

  // The store forgot what the repository has: each blob is asked for with a mount from the
  // repository itself (one POST, in place of HEAD then POST), which the registry answers 201: there.
  rmSync(join(root, 'distribution.json'));
  const mark3 = accessLog(reg).length;
  const third = await push(t, ref);
  t.deepEqual(third.phases(layer.diffId), ['preparing', 'exists']);
  t.is(third.result.digest, first.result.digest);
  const hits3 = accessLog(reg, mark3);
  t.deepEqual(uploaded(hits3), [], 'no blob upload completed');
  t.deepEqual(uploadSessions(hits3), [], 'no upload session opened');
  const asked = hits3.filter((h) => h.method === 'POST' && h.uri.includes('/blobs/uploads/?') && h.uri.includes('from=base'));
  t.deepEqual(asked.map((h) => decodeURIComponent(/mount=([^&]+)/.exec(h.uri)?.[1] ?? '')).sort(), [gz, image.id, ...provenance].sort(), 'a mount from itself per blob: layer, config, provenance');
  t.true(asked.every((h) => h.status === 201), 'each answered: there');
  t.deepEqual(hits3.filter((h) => h.method === 'HEAD' && h.uri.includes('/blobs/')), [], 'no HEAD');

  // The registry lost a blob the store knows there (deleted since): the manifest is refused for it,
  // then the blobs taken on trust are checked, the lost one uploaded again, and the manifest goes.
  const del = await fetch(`http://${reg.host}/v2/base/blobs/${gz}`, { method: 'DELETE' });
  t.is(del.status, 202);
  const mark4 = accessLog(reg).length;
  const fourth = await push(t, ref);
  t.is(fourth.result.digest, first.result.digest);
  t.deepEqual(fourth.result.layers.map((l) => l.how), ['pushed']);
  const hits4 = accessLog(reg, mark4);
  t.true(hits4.some((h) => h.method === 'PUT' && h.uri === `/v2/base/manifests/${first.result.manifest}` && h.status === 400), 'the manifest refused once');
  t.deepEqual(uploaded(hits4), [gz], 'the lost layer uploaded again, nothing else');
  const lost = join(t.context.dir, 'lost-store');
  await Image.pull(ref, { root: lost });
  t.is((await runIn(lost, ref, ['echo', 'found again'])).trim(), 'found again');
});

rtest('a child image: only its new layer is uploaded, the base layer is mounted from the base repository; two pushes, one digest', async (t) => {
  const { reg, root, dir } = t.context;
  const ctx = join(dir, 'child-ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'hello.txt'), 'hello from the child\n');
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${reg.host}/base:1\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n`);
  const child = await buildImage({ context: ctx, root, tags: [`${reg.host}/app:1`] });
  t.is(child.layers.length, 2);
  const base = await Image.get(`${reg.host}/base:1`, { root });
  const baseGz = new Store({ root }).distribution.compressed(base.layers[0]!.diffId)!.digest;
  const mark = accessLog(reg).length;
  const { result, phases } = await push(t, `${reg.host}/app:1`);
  t.deepEqual(phases(child.layers[0]!.diffId), ['preparing', 'mounted']);
  t.deepEqual(phases(child.layers[1]!.diffId), ['preparing', 'pushed']);
  const hits = accessLog(reg, mark);
  t.deepEqual(uploaded(hits).sort(), [result.layers[1]!.digest, child.id, ...(await attestationBlobs(`${reg.host}/app:1`))].sort(), 'only the new layer and the config were uploaded (and the provenance)');
  t.true(hits.some((h) => h.method === 'POST' && h.uri.includes(`mount=${encodeURIComponent(baseGz)}`) && h.uri.includes('from=base') && h.status === 201), 'the base layer was mounted');
  t.is(result.layers[0]!.digest, baseGz, 'the base layer went as the blob made for it before');

  await (await Image.get(`${reg.host}/app:1`, { root })).tag(`${reg.host}/app:2`);
  const mark2 = accessLog(reg).length;
  const second = await push(t, `${reg.host}/app:2`);
  t.is(second.result.digest, result.digest, 'the same image pushed twice has one digest');
  t.deepEqual(uploaded(accessLog(reg, mark2)), []);
  const elsewhere = join(dir, 'child-store');
  await Image.pull(`${reg.host}/app:2`, { root: elsewhere });
  t.is((await runIn(elsewhere, `${reg.host}/app:2`, [])).trim(), 'hello from the child');
});

rtest('CLI: nsbox push prints docker\'s lines; --all-tags pushes every tag; a name that is not here is a clear error', async (t) => {
  const { reg } = t.context;
  const r = cli(t, ['push', `${reg.host}/app:1`]);
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines[0], `The push refers to repository [${reg.host}/app]`);
  t.true(lines.some((l) => /^[0-9a-f]{12}: Preparing$/.test(l)));
  t.is(lines.filter((l) => /^[0-9a-f]{12}: Layer already exists$/.test(l)).length, 2, r.stdout);
  t.regex(lines.at(-1)!, /^1: digest: sha256:[0-9a-f]{64} size: \d+$/);

  const all = cli(t, ['push', '--all-tags', `${reg.host}/app`]);
  t.is(all.status, 0, all.stderr);
  t.deepEqual(all.stdout.split('\n').filter((l) => / digest: /.test(l)).map((l) => l.split(':')[0]), ['1', '2']);

  const missing = cli(t, ['push', `${reg.host}/nothing:here`]);
  t.is(missing.status, 125);
  t.regex(missing.stderr, /An image does not exist locally with the tag: 127\.0\.0\.1:\d+\/nothing:here/);
});

rtest('skopeo inspects and copies (to an OCI layout) what nsbox pushed', async (t) => {
  const { reg, dir } = t.context;
  const pushed = (await push(t, `${reg.host}/app:1`)).result;
  const inspect = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/app:1`], { encoding: 'utf8' });
  t.is(inspect.status, 0, inspect.stderr);
  const info = JSON.parse(inspect.stdout) as { Digest: string; Layers: string[] };
  t.is(info.Digest, pushed.digest);
  t.deepEqual(info.Layers, pushed.layers.map((l) => l.digest));
  const oci = join(dir, 'skopeo-oci');
  const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/app:1`, `oci:${oci}:app`], { encoding: 'utf8' });
  t.is(copy.status, 0, copy.stderr);
  const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  t.is(index.manifests[0]!.digest, pushed.manifest, 'skopeo kept the manifest as pushed');
  for (const l of pushed.layers) t.truthy(readdirSync(join(oci, 'blobs', 'sha256')).includes(l.digest.slice(7)));
});

/**
 * A TCP proxy to the registry that, once `limit` bytes of one request went through, stops
 * forwarding and calls `onLimit` (the test's kill): the upload cannot finish behind the kill.
 */
async function cuttingProxy(upstream: number, limit: number, onLimit: () => void): Promise<{ host: string; cut: () => boolean; stop: () => Promise<void> }> {
  let armed = true;
  let cut = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(upstream, '127.0.0.1');
    sockets.add(client).add(up);
    let seen = 0;
    client.on('data', (d: Buffer) => {
      seen += d.length;
      if (armed && seen >= limit) {
        armed = false;
        cut = true;
        client.pause();
        onLimit();
        return;
      }
      up.write(d);
    });
    up.pipe(client);
    const close = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    cut: () => cut,
    stop: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

rtest('kill -9 in the middle of an upload, then push again: it succeeds, the registry has the digest an uninterrupted push gives, and the image pulls back whole', async (t) => {
  const { reg, root, dir } = t.context;
  const ctx = join(dir, 'big-ctx');
  mkdirSync(ctx);
  // random bytes do not compress: the layer's blob is as big as the file
  writeFileSync(join(ctx, 'big.bin'), randomBytes(8 << 20));
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${reg.host}/base:1\nCOPY big.bin /big.bin\n`);
  let child: ReturnType<typeof spawn> | undefined;
  const proxy = await cuttingProxy(reg.port, 2 << 20, () => child?.kill('SIGKILL'));
  t.teardown(() => proxy.stop());
  const image = await buildImage({ context: ctx, root, tags: [`${proxy.host}/big:1`] });
  const mark = accessLog(reg).length;
  child = spawn(process.execPath, [bin, 'push', `${proxy.host}/big:1`], {
    env: { ...process.env, NSBOX_ROOT: root, DOCKER_CONFIG: t.context.dockerConfig },
    stdio: 'ignore',
  });
  const exit = await new Promise<NodeJS.Signals | null>((r) => child!.once('exit', (_code, signal) => r(signal)));
  t.is(exit, 'SIGKILL');
  t.true(proxy.cut(), 'the push was killed with its upload half-sent');
  const client = new RegistryClient({ credentialSources: [] });
  await t.throwsAsync(client.resolve(`${reg.host}/big:1`), { instanceOf: RegistryError }, 'no manifest was pushed');
  const tmp = join(root, 'tmp');
  t.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('blob-')), [], 'no temp blob left in the store');
  const bigGz = new Store({ root }).distribution.compressed(image.layers[1]!.diffId)!;
  t.false(uploaded(accessLog(reg, mark)).includes(bigGz.digest), 'the big layer\'s upload never completed before the kill');
  t.false(await client.hasBlob(`${reg.host}/big:1`, bigGz.digest), 'the registry does not have the big layer');

  const mark2 = accessLog(reg).length;
  const again = await cliAsync(t, ['push', `${proxy.host}/big:1`]);
  t.is(again.status, 0, again.stderr);
  t.deepEqual(uploaded(accessLog(reg, mark2)).filter((d) => d === bigGz.digest), [bigGz.digest], 'the second push uploaded the big layer once');
  const resumed = await client.fetchManifest(`${reg.host}/big:1`);
  t.regex(again.stdout, new RegExp(`1: digest: ${resumed.digest} size: ${resumed.bytes.length}`), 'the registry holds what the second push said it pushed');
  // The same image pushed once without a kill, to a fresh registry: the same digests there.
  const clean = await startRegistry();
  t.teardown(() => clean.stop());
  const straight = await Image.push(`${clean.host}/big:1`, { root, image: `${proxy.host}/big:1` });
  const cleanClient = new RegistryClient({ credentialSources: [] });
  t.is((await cleanClient.fetchManifest(`${clean.host}/big:1`)).digest, resumed.digest, 'the interrupted-then-resumed push gives the registry the digest an uninterrupted push gives');
  t.is(straight.digest, resumed.digest);
  const [a, b] = await Promise.all([client.resolve(`${reg.host}/big:1`), cleanClient.resolve(`${clean.host}/big:1`)]);
  t.is(a.digest, b.digest);
  t.deepEqual(a.manifest.layers.map((l) => [l.digest, l.size]), b.manifest.layers.map((l) => [l.digest, l.size]));
  t.is(a.manifest.layers[1]!.digest, bigGz.digest);
  const elsewhere = join(dir, 'big-store');
  const pulled = await Image.pull(`${reg.host}/big:1`, { root: elsewhere });
  t.deepEqual(pulled.layers.map((l) => l.diffId), image.layers.map((l) => l.diffId));
  t.is((await runIn(elsewhere, `${reg.host}/big:1`, ['sh', '-c', 'wc -c < /big.bin'])).trim(), String(8 << 20));
});

const atest = skipIf(reason ?? htpasswdUnavailable(), test.serial);
atest('a push without credentials to an htpasswd registry: a clear 401 message; with them it goes through', async (t) => {
  const { root, dir } = t.context;
  const authDir = mkdtempSync(join(dir, 'auth-'));
  const reg = await startRegistry({ htpasswd: makeHtpasswd(authDir, 'nsbox', 'nsbox-test') });
  t.teardown(() => reg.stop());
  await (await Image.get(`${t.context.reg.host}/base:1`, { root })).tag(`${reg.host}/base:1`);
  const r = cli(t, ['push', `${reg.host}/base:1`]);
  t.is(r.status, 125);
  t.regex(r.stderr, new RegExp(`push ${reg.host.replace(/\./g, '\\.')}/base:1.*unauthorized: ${reg.host.replace(/\./g, '\\.')} needs credentials and none were found`));
  t.deepEqual(accessLog(reg).filter((h) => h.method === 'PUT'), [], 'nothing was written');
  const ok = await Image.push(`${reg.host}/base:1`, { root, auth: { username: 'nsbox', password: 'nsbox-test' } });
  const check = new RegistryClient({ auth: { username: 'nsbox', password: 'nsbox-test' }, credentialSources: [] });
  t.is((await check.fetchManifest(`${reg.host}/base:1`)).digest, ok.digest);
  t.is((await check.resolve(`${reg.host}/base:1`)).digest, ok.manifest);
});

const dtest = skipIf(reason ?? apiUnavailable({ docker: true }), test.serial);
dtest('docker push through nsbox serve: the docker CLI\'s lines, and the registry has the image', async (t) => {
  const serve = await startServe();
  t.teardown(() => cleanup(serve));
  const { reg } = t.context;
  const tar = join(serve.dir, 'rootfs.tar');
  spawnSync('tar', ['-C', rootfs(), '-cf', tar, '.']);
  const imported = docker(serve, ['import', tar, `${reg.host}/viadocker:1`]);
  t.is(imported.status, 0, imported.stderr);
  const r = docker(serve, ['push', `${reg.host}/viadocker:1`]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`The push refers to repository \\[${reg.host.replace(/\./g, '\\.')}/viadocker\\]`));
  t.regex(r.stdout, /[0-9a-f]{12}: Pushed/);
  const digest = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(r.stdout)?.[1];
  t.truthy(digest, r.stdout);
  t.is((await new RegistryClient({ credentialSources: [] }).fetchManifest(`${reg.host}/viadocker:1`)).digest, digest!);
  const again = docker(serve, ['push', `${reg.host}/viadocker:1`]);
  t.is(again.status, 0, again.stderr);
  t.regex(again.stdout, /[0-9a-f]{12}: Layer already exists/);
  const missing = docker(serve, ['push', `${reg.host}/viadocker:nope`]);
  t.not(missing.status, 0);
  t.regex(missing.stderr, /does not exist locally/);
});
