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

const test = anyTest as TestFn<{ serve: Serve; nsbox: (...args: string[]) => string }>;
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
  t.context.nsbox = nsbox;
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

rtest('volume labels: API Labels and CLI --label on create, shown by inspect, matched by label filters in both', async (t) => {
  const sock = t.context.serve.socket;
  const made = await request(sock, 'POST', '/v1.41/volumes/create', { Name: 'lab-api', Labels: { team: 'a', tier: 'db' } });
  t.is(made.status, 201);
  t.deepEqual(made.json.Labels, { team: 'a', tier: 'db' });
  t.is(t.context.nsbox('volume', 'create', '--label', 'team=b', '--label', 'solo', 'lab-cli'), 'lab-cli');
  t.deepEqual((await request(sock, 'GET', '/v1.41/volumes/lab-cli')).json.Labels, { team: 'b', solo: '' });
  const names = async (filters: unknown) => ((await request(sock, 'GET', `/v1.41/volumes?filters=${q(filters)}`)).json.Volumes as { Name: string }[]).map((v) => v.Name).sort();
  t.deepEqual(await names({ label: ['team'] }), ['lab-api', 'lab-cli']);
  t.deepEqual(await names({ label: ['team=a', 'tier=db'] }), ['lab-api']);
  t.deepEqual(await names({ label: ['solo'] }), ['lab-cli']);
  t.is(t.context.nsbox('volume', 'ls', '-q', '--filter', 'label=team=b'), 'lab-cli');
  t.is(t.context.nsbox('volume', 'ls', '-q', '--filter', 'label=team', '--filter', 'name=api'), 'lab-api');
  t.deepEqual(JSON.parse(t.context.nsbox('volume', 'inspect', 'lab-api'))[0].Labels, { team: 'a', tier: 'db' });
});

rtest('container filters, one matcher for nsbox ps --filter and GET /containers/json: name, id, status, ancestor, label, network, health; unknown ones refused', async (t) => {
  const sock = t.context.serve.socket;
  const nsbox = t.context.nsbox;
  const create = async (name: string, body: object) => {
    const r = await request(sock, 'POST', `/v1.41/containers/create?name=${name}`, body);
    t.is(r.status, 201, r.body);
    return r.json.Id as string;
  };
  const a = await create('filt-a', { Image: 'labelled:1', Cmd: ['sleep', '100'], Labels: { role: 'x' } });
  const b = await create('filt-b', { Image: 'plain:1', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
  nsbox('network', 'create', 'filt-net');
  const c = await create('filt-c', { Image: 'plain:1', Cmd: ['true'], HostConfig: { NetworkMode: 'filt-net' } });
  const ps = (...f: string[]) => nsbox('ps', '-aq', '--no-trunc', ...f.flatMap((x) => ['--filter', x])).split('\n').filter(Boolean).sort();
  const api = async (filters: unknown) => ((await request(sock, 'GET', `/v1.41/containers/json?all=1&filters=${q(filters)}`)).json as { Id: string }[]).map((x) => x.Id).sort();
  const both = async (f: string[], want: string[]) => {
    t.deepEqual(ps(...f), [...want].sort(), `ps ${f.join(' ')}`);
    const m: Record<string, string[]> = {};
    for (const x of f) (m[x.slice(0, x.indexOf('='))] ??= []).push(x.slice(x.indexOf('=') + 1));
    t.deepEqual(await api(m), [...want].sort(), `api ${f.join(' ')}`);
  };
  await both(['name=filt-a'], [a]);
  await both(['name=filt'], [a, b, c]);
  await both([`id=${b.slice(0, 12)}`], [b]);
  await both(['status=created', 'name=filt-'], [a, b, c]);
  await both(['status=running', 'name=filt-'], []);
  await both(['ancestor=labelled', 'name=filt-'], [a]);
  await both(['ancestor=plain:1', 'name=filt-'], [b, c]);
  await both(['ancestor=plain:2', 'name=filt-'], []);
  await both(['label=role=x'], [a]);
  await both(['label=team=a', 'label=role=x'], [a]);
  await both(['network=filt-net'], [c]);
  await both(['health=none', 'name=filt-'], [a, b, c]);
  const bad = spawnSync(process.execPath, [bin, 'ps', '--filter', 'colour=red'], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.serve.root } });
  t.not(bad.status, 0);
  t.regex(bad.stderr, /invalid filter 'colour'/);
  t.is((await request(sock, 'GET', `/v1.41/containers/json?filters=${q({ colour: ['red'] })}`)).status, 400);
  t.is((await request(sock, 'GET', `/v1.41/containers/json?filters=${q({ status: ['sleepy'] })}`)).status, 400);
  for (const id of [a, b, c]) nsbox('rm', id);
  nsbox('network', 'rm', 'filt-net');
});
