/**
 * Registry auth against real docker-registry instances: htpasswd Basic auth (explicit credentials,
 * docker's config.json, wrong and missing credentials, a redirect that must not carry them to
 * another host) and the Bearer token flow through a token issuer in the fixtures (anonymous pull,
 * tokens cached per scope, push with a cross-repo mount, wrong credentials).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { DockerConfigCredentials, RegistryClient, RegistryError, StaticCredentials, type ResolvedImage } from '../../lib/image/registry/index.js';
import { rootfs, skipIf } from './_helpers.js';
import {
  buildImages, htpasswdUnavailable, makeHtpasswd, pushImages, registryUnavailable, startFileServer, startRegistry, startTokenIssuer,
  tokenUnavailable, type BuiltImages, type FileServer, type Registry, type SeededImages, type TokenIssuer,
} from '../fixtures/registry.js';

interface Ctx {
  tmp: string;
  images?: BuiltImages;
  basic?: Registry;
  basicRedirect?: Registry;
  files?: FileServer;
  basicSeeded?: SeededImages;
  issuer?: TokenIssuer;
  token?: Registry;
  tokenSeeded?: SeededImages;
}

const test = anyTest as TestFn<Ctx>;
const USER = { username: 'nsbox', password: 'nsbox-test' };
const WRONG = { username: 'nsbox', password: 'wrong' };
const RETRY = { retries: 1, delayMs: 20 };

const base = registryUnavailable();
const basicWhy = base ?? htpasswdUnavailable();
const tokenWhy = base ?? tokenUnavailable();
const basicTest = skipIf(basicWhy, test);
const tokenTest = skipIf(tokenWhy, test);

test.before(async (t) => {
  t.context.tmp = mkdtempSync(join(tmpdir(), 'nsbox-registry-auth-'));
  if (base) return;
  const images = await buildImages(rootfs());
  t.context.images = images;
  if (!basicWhy) {
    const htpasswd = makeHtpasswd(t.context.tmp, USER.username, USER.password);
    t.context.basic = await startRegistry({ htpasswd });
    t.context.files = await startFileServer(t.context.basic.storage);
    t.context.basicRedirect = await startRegistry({ htpasswd, storage: t.context.basic.storage, redirectBaseUrl: t.context.files.baseUrl });
    t.context.basicSeeded = await pushImages(images, t.context.basic.host, USER);
  }
  if (!tokenWhy) {
    t.context.issuer = await startTokenIssuer({ [USER.username]: USER.password });
    const { realm, service, issuer, certBundle } = t.context.issuer;
    t.context.token = await startRegistry({ token: { realm, service, issuer, certBundle } });
    t.context.tokenSeeded = await pushImages(images, t.context.token.host, USER);
  }
});

test.after.always(async (t) => {
  await t.context.basicRedirect?.stop();
  await t.context.basic?.stop();
  await t.context.token?.stop();
  await t.context.issuer?.stop();
  await t.context.files?.stop();
  t.context.images?.cleanup();
  rmSync(t.context.tmp, { recursive: true, force: true });
});

const client = (auth?: { username: string; password: string }) =>
  new RegistryClient({ credentialSources: auth ? [new StaticCredentials(auth)] : [], retry: RETRY });

// ---------------------------------------------------------------- htpasswd (Basic)

basicTest('basic auth: explicit credentials pull', async (t) => {
  const { basic, basicSeeded } = t.context;
  const r = await client(USER).resolve(`${basic!.host}/layered:1`, { platform: 'linux/amd64' });
  t.is(r.digest, basicSeeded!.digests.layered);
  const dir = mkdtempSync(join(t.context.tmp, 'dl-'));
  await client(USER).fetchBlob(r.reference, r.manifest.layers[2]!, join(dir, 'l2'));
  t.is(statSync(join(dir, 'l2')).size, r.manifest.layers[2]!.size, 'the blob arrived whole (its digest checked by fetchBlob)');
});

basicTest('basic auth: credentials from docker config.json (auth and username/password forms, DOCKER_CONFIG)', async (t) => {
  const { basic, basicSeeded } = t.context;
  const dir = mkdtempSync(join(t.context.tmp, 'docker-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ auths: { [`http://${basic!.host}`]: { auth: Buffer.from(`${USER.username}:${USER.password}`).toString('base64') } } }));
  const viaFile = new RegistryClient({ dockerConfig: path, retry: RETRY });
  t.is((await viaFile.resolve(`${basic!.host}/busybox:1`)).digest, basicSeeded!.digests.busybox);

  writeFileSync(path, JSON.stringify({ auths: { [basic!.host]: { username: USER.username, password: USER.password } } }));
  const saved = process.env['DOCKER_CONFIG'];
  process.env['DOCKER_CONFIG'] = dir;
  t.teardown(() => {
    if (saved === undefined) delete process.env['DOCKER_CONFIG'];
    else process.env['DOCKER_CONFIG'] = saved;
  });
  t.is((await new RegistryClient({ retry: RETRY }).resolve(`${basic!.host}/busybox:docker`)).digest, basicSeeded!.digests.busyboxDocker);
  // Explicit credentials come first in the ordered list: wrong ones there fail even with a good config.json.
  const explicitFirst = new RegistryClient({ auth: WRONG, credentialSources: [new DockerConfigCredentials(path)], retry: RETRY });
  await t.throwsAsync(explicitFirst.resolve(`${basic!.host}/busybox:1`), { instanceOf: RegistryError, message: /check the credentials/ });
});

basicTest('basic auth: wrong credentials, no credentials', async (t) => {
  const { basic } = t.context;
  const wrong = await t.throwsAsync(client(WRONG).resolve(`${basic!.host}/busybox:1`), { instanceOf: RegistryError });
  t.is(wrong!.code, 'UNAUTHORIZED');
  t.is(wrong!.status, 401);
  t.is(wrong!.message, `pull ${basic!.host}/busybox:1: unauthorized: check the credentials for ${basic!.host}`);
  const none = await t.throwsAsync(client().resolve(`${basic!.host}/busybox:1`), { instanceOf: RegistryError });
  t.is(none!.code, 'UNAUTHORIZED');
  t.regex(none!.message, /needs credentials and none were found/);
});

basicTest('basic auth + redirect: the blob host never sees the Authorization header', async (t) => {
  const { basicRedirect, files, basicSeeded } = t.context;
  const c = client(USER);
  const before = files!.requests.length;
  const r = await c.resolve(`${basicRedirect!.host}/busybox:1`, { platform: 'linux/amd64' });
  t.is(r.digest, basicSeeded!.digests.busybox);
  const dir = mkdtempSync(join(t.context.tmp, 'dl-'));
  await c.fetchBlob(r.reference, r.manifest.layers[0]!, join(dir, 'layer'));
  t.is(readFileSync(join(dir, 'layer')).length, r.manifest.layers[0]!.size);
  const seen = files!.requests.slice(before);
  t.true(seen.length >= 2, 'config and layer came from the file server');
  t.deepEqual(seen.filter((q) => q.authorization !== undefined), []);
});

// ---------------------------------------------------------------- Bearer tokens

tokenTest('token auth: anonymous pull gets a pull token, cached per scope', async (t) => {
  const { token, issuer, tokenSeeded } = t.context;
  const c = client();
  const before = issuer!.requests.length;
  const r = await c.resolve(`${token!.host}/multi:1`, { platform: 'linux/amd64' });
  t.is(r.index?.digest, tokenSeeded!.digests.index);
  const dir = mkdtempSync(join(t.context.tmp, 'dl-'));
  await c.fetchBlob(r.reference, r.manifest.layers[0]!, join(dir, 'layer'));
  await c.resolve(`${token!.host}/multi:1`, { platform: 'linux/arm64' });
  // Other tests run at the same time: look only at anonymous requests for these two scopes.
  const mine = () => issuer!.requests.slice(before).filter((q) => q.user === undefined && /^repository:(multi|busybox):pull$/.test(q.scopes.join(' ')));
  t.deepEqual(mine(), [{ scopes: ['repository:multi:pull'], status: 200 }], 'one token for every request on one scope');
  await c.resolve(`${token!.host}/busybox:1`);
  t.deepEqual(mine().slice(1), [{ scopes: ['repository:busybox:pull'], status: 200 }], 'a new scope, a new token');
});

tokenTest('token auth: wrong credentials are refused by the token server', async (t) => {
  const { token } = t.context;
  const err = await t.throwsAsync(client(WRONG).resolve(`${token!.host}/busybox:1`), { instanceOf: RegistryError });
  t.is(err!.code, 'UNAUTHORIZED');
  t.is(err!.message, `pull ${token!.host}/busybox:1: unauthorized: check the credentials for ${token!.host}`);
});

async function blobsOf(c: RegistryClient, r: ResolvedImage, dir: string) {
  const list = [r.manifest.config, ...r.manifest.layers].map((descriptor, i) => ({ descriptor, destPath: join(dir, `b${i}`) }));
  await c.fetchBlobs(r.reference, list);
  return list.map((b) => ({ descriptor: b.descriptor, source: b.destPath }));
}

tokenTest('token auth: push with credentials (mount scope included); anonymous push is refused', async (t) => {
  const { token, issuer } = t.context;
  const c = client(USER);
  const r = await c.resolve(`${token!.host}/layered:1`, { platform: 'linux/amd64' });
  const dir = mkdtempSync(join(t.context.tmp, 'push-'));
  const blobs = await blobsOf(c, r, dir);
  const manifest = { bytes: r.manifestBytes, mediaType: r.mediaType };
  const before = issuer!.requests.length;
  const res = await c.pushImage(`${token!.host}/pushed/layered:1`, { manifest, blobs, mountFrom: 'layered' });
  t.is(res.digest, r.digest);
  t.is(res.mounted.length, 4);
  const pushTokens = issuer!.requests.slice(before).filter((q) => q.user === USER.username && q.scopes.join(' ') === 'repository:pushed/layered:pull,push');
  t.is(pushTokens.length, 1, 'parallel blob checks share one token request');
  t.true(issuer!.requests.slice(before).some((q) => q.user === USER.username && q.scopes.includes('repository:layered:pull') && q.scopes.includes('repository:pushed/layered:pull,push')));
  t.is((await client().resolve(`${token!.host}/pushed/layered:1`)).digest, r.digest);

  const anon = await t.throwsAsync(client().pushImage(`${token!.host}/pushed/anon:1`, { manifest, blobs }), { instanceOf: RegistryError });
  t.is(anon!.code, 'UNAUTHORIZED');
});

tokenTest('token auth: an expired token is renewed', async (t) => {
  // Tokens live 60 s; the client's clock is moved past that instead of waiting for it.
  const issuer = await startTokenIssuer({ [USER.username]: USER.password }, 60);
  t.teardown(() => issuer.stop());
  const reg = await startRegistry({ token: { realm: issuer.realm, service: issuer.service, issuer: issuer.issuer, certBundle: issuer.certBundle } });
  t.teardown(() => reg.stop());
  let ahead = 0;
  const c = new RegistryClient({ credentialSources: [], retry: RETRY, now: () => Date.now() + ahead });
  const digest = `sha256:${'3'.repeat(64)}`;
  t.false(await c.hasBlob(`${reg.host}/empty:1`, digest));
  ahead = 50_000;
  t.false(await c.hasBlob(`${reg.host}/empty:1`, digest));
  t.is(issuer.requests.length, 1, 'cached while valid');
  ahead = 61_000;
  t.false(await c.hasBlob(`${reg.host}/empty:1`, digest));
  t.is(issuer.requests.length, 2, 'renewed after expiry');
});
