/**
 * List filters a reaper (testcontainers' Ryuk, tools/reaper/reaper.mjs) removes by: `label` on
 * `/images/json` and `/volumes`, docker's 400 for a filter an endpoint lacks (never ignored: an
 * ignored filter lists everything, and the reaper removes it), and the image's labels on the
 * containers made from it, as docker merges them at create.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { isRoot, rootfs, skipIf } from './_helpers.js';
import { bin, cleanup, request, startServe, type Serve } from './api-fixture.js';

const test = anyTest as TestFn<{ serve: Serve }>;
const dist = fileURLToPath(new URL('../../dist/cli/commands/serve.js', import.meta.url));
const reason = !isRoot ? 'needs root' : !existsSync(dist) ? 'dist/ is not built (tsc -p tsconfig.json builds it)' : undefined;
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  t.context.serve = await startServe();
  const tar = join(t.context.serve.dir, 'rootfs.tar');
  spawnSync('tar', ['-C', rootfs(), '-cf', tar, '.']);
  const nsbox = (...args: string[]) => {
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.serve.root } });
    if (r.status !== 0) throw new Error(`nsbox ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  nsbox('import', '-c', 'LABEL team=a tier=web', tar, 'labelled:1');
  nsbox('import', tar, 'plain:1');
});
test.after.always(async (t) => {
  await cleanup(t.context.serve);
});

const q = (filters: unknown) => encodeURIComponent(JSON.stringify(filters));

rtest('GET /images/json: label filters by key and by key=value; an unknown filter is a 400', async (t) => {
  const sock = t.context.serve.socket;
  const tags = async (filters: unknown) => ((await request(sock, 'GET', `/v1.41/images/json?filters=${q(filters)}`)).json as { RepoTags: string[] }[]).flatMap((i) => i.RepoTags);
  t.deepEqual(await tags({ label: { team: true } }), ['labelled:1']);
  t.deepEqual(await tags({ label: { 'team=a': true, 'tier=web': true } }), ['labelled:1']);
  t.deepEqual(await tags({ label: { 'team=b': true } }), []);
  t.deepEqual(await tags({ label: ['org.testcontainers.session-id=abc'] }), []);
  t.deepEqual((await tags({})).sort(), ['labelled:1', 'plain:1']);
  const bad = await request(sock, 'GET', `/v1.41/images/json?filters=${q({ colour: ['red'] })}`);
  t.is(bad.status, 400);
  t.is(bad.json.message, "invalid filter 'colour'");
});

rtest('GET /volumes: name, label, dangling and driver filters; an unknown filter is a 400', async (t) => {
  const sock = t.context.serve.socket;
  t.is((await request(sock, 'POST', '/v1.41/volumes/create', { Name: 'data-one' })).status, 201);
  t.is((await request(sock, 'POST', '/v1.41/volumes/create', { Name: 'other' })).status, 201);
  const names = async (filters: unknown) => ((await request(sock, 'GET', `/v1.41/volumes?filters=${q(filters)}`)).json.Volumes as { Name: string }[]).map((v) => v.Name).sort();
  t.deepEqual(await names({}), ['data-one', 'other']);
  t.deepEqual(await names({ name: ['data'] }), ['data-one']);
  t.deepEqual(await names({ label: ['org.testcontainers.session-id=abc'] }), []);
  t.deepEqual(await names({ dangling: ['true'] }), ['data-one', 'other']);
  t.deepEqual(await names({ dangling: ['false'] }), []);
  t.deepEqual(await names({ driver: ['local'] }), ['data-one', 'other']);
  t.deepEqual(await names({ driver: ['nfs'] }), []);
  const bad = await request(sock, 'GET', `/v1.41/volumes?filters=${q({ colour: ['red'] })}`);
  t.is(bad.status, 400);
  t.is(bad.json.message, "invalid filter 'colour'");
  t.is((await request(sock, 'GET', `/v1.41/volumes?filters=${q({ dangling: ['maybe'] })}`)).status, 400);
});

rtest("a container has its image's labels under its own (create merges them, as docker's)", async (t) => {
  const sock = t.context.serve.socket;
  const c = await request(sock, 'POST', '/v1.41/containers/create', { Image: 'labelled:1', Labels: { tier: 'db', own: '1' } });
  t.is(c.status, 201, c.body);
  const i = await request(sock, 'GET', `/v1.41/containers/${c.json.Id}/json`);
  t.deepEqual(i.json.Config.Labels, { team: 'a', tier: 'db', own: '1' });
  const listed = await request(sock, 'GET', `/v1.41/containers/json?all=1&filters=${q({ label: ['team=a'] })}`);
  t.deepEqual(listed.json.map((x: { Id: string }) => x.Id), [c.json.Id]);
  const plain = await request(sock, 'POST', '/v1.41/containers/create', { Image: 'plain:1' });
  t.deepEqual((await request(sock, 'GET', `/v1.41/containers/${plain.json.Id}/json`)).json.Config.Labels, {});
});
