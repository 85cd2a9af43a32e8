/**
 * Networks as objects through `nsbox serve`: the docker CLI 28 (`docker network create/ls/inspect/
 * rm/prune`) and the raw Engine API (filters, create body, errors). A network record touches no
 * kernel state, so nothing here needs a network namespace of its own.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { spawnSync } from 'node:child_process';
import { isRoot, skipIf } from './_helpers.js';
import { cleanup, docker, request, startServe, type Serve } from './api-fixture.js';

const test = anyTest as TestFn<{ serve: Serve }>;
const dist = fileURLToPath(new URL('../../dist/cli/commands/serve.js', import.meta.url));
const reason = !isRoot
  ? 'needs root'
  : !existsSync(dist)
    ? 'dist/ is not built (tsc -p tsconfig.json builds it)'
    : spawnSync('docker', ['--version']).status !== 0
      ? 'no docker CLI installed'
      : undefined;
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  t.context.serve = await startServe();
});
test.after.always(async (t) => {
  await cleanup(t.context.serve);
});

const ok = (t: { is: (a: unknown, b: unknown, m?: string) => void }, r: { status: number | null; stderr: string }) => t.is(r.status, 0, r.stderr);

rtest('docker network create, ls, inspect, rm', (t) => {
  const s = t.context.serve;
  const created = docker(s, ['network', 'create', '--subnet', '10.77.0.0/16', '--gateway', '10.77.0.254', '--label', 'team=a', '-o', 'com.docker.network.driver.mtu=1400', '--internal', 'backend']);
  ok(t, created);
  const id = created.stdout.trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  ok(t, docker(s, ['network', 'create', 'front']));

  const ls = docker(s, ['network', 'ls']);
  ok(t, ls);
  const lines = ls.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
  t.deepEqual(
    lines.slice(1).map((l) => l.split(/\s+/).slice(1).join(' ')),
    ['backend bridge local', 'bridge bridge local', 'front bridge local', 'host host local', 'none null local'],
  );
  t.true(lines.some((l) => l.startsWith(id.slice(0, 12))));
  t.is(docker(s, ['network', 'ls', '-q', '--filter', 'label=team=a']).stdout, `${id.slice(0, 12)}\n`);
  t.is(docker(s, ['network', 'ls', '--filter', 'type=custom', '--format', '{{.Name}}']).stdout, 'backend\nfront\n');
  t.is(docker(s, ['network', 'ls', '--filter', 'name=fro', '--format', '{{.Name}} {{.Driver}}']).stdout, 'front bridge\n');
  t.is(docker(s, ['network', 'ls', '--filter', 'dangling=true', '--format', '{{.Name}}']).stdout, 'backend\nfront\n');

  const inspect = docker(s, ['network', 'inspect', 'backend']);
  ok(t, inspect);
  const [n] = JSON.parse(inspect.stdout);
  t.like(n, {
    Name: 'backend',
    Id: id,
    Scope: 'local',
    Driver: 'bridge',
    EnableIPv6: false,
    Internal: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: '10.77.0.0/16', Gateway: '10.77.0.254' }] },
    Containers: {},
    Options: { 'com.docker.network.driver.mtu': '1400' },
    Labels: { team: 'a' },
  });
  t.regex(n.Created, /^\d{4}-\d\d-\d\dT/);
  t.is(docker(s, ['network', 'inspect', '-f', '{{.Name}} {{.Internal}}', id.slice(0, 6)]).stdout, 'backend true\n');
  const bridge = JSON.parse(docker(s, ['network', 'inspect', 'bridge']).stdout)[0];
  t.like(bridge, { Name: 'bridge', Driver: 'bridge', IPAM: { Config: [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }] } });
  t.is(bridge.Options['com.docker.network.bridge.name'], 'nsbox0');
  t.is(JSON.parse(docker(s, ['network', 'inspect', 'host']).stdout)[0].Driver, 'host');

  const dup = docker(s, ['network', 'create', 'front']);
  t.is(dup.status, 1);
  t.is(dup.stderr, 'Error response from daemon: network with name front already exists\n');
  const overlap = docker(s, ['network', 'create', '--subnet', '10.77.128.0/17', 'x']);
  t.is(overlap.status, 1);
  t.regex(overlap.stderr, /^Error response from daemon: Pool overlaps with other one on this address space: 10\.77\.128\.0\/17 overlaps network backend/);
  const badGateway = docker(s, ['network', 'create', '--subnet', '10.78.0.0/16', '--gateway', '10.79.0.1', 'x']);
  t.regex(badGateway.stderr, /no matching subnet for gateway 10\.79\.0\.1/);
  t.regex(docker(s, ['network', 'create', '--subnet', 'nope', 'x']).stderr, /invalid/);
  t.regex(docker(s, ['network', 'create', '-d', 'overlay', 'x']).stderr, /plugin "overlay" not found/);
  t.regex(docker(s, ['network', 'inspect', 'missing']).stderr, /network missing not found/);
  t.is(docker(s, ['network', 'ls', '--filter', 'name=^x$', '-q']).stdout, '', 'no failed create left a network');

  t.regex(docker(s, ['network', 'rm', 'bridge']).stderr, /bridge is a pre-defined network and cannot be removed/);
  t.regex(docker(s, ['network', 'rm', 'host']).stderr, /host is a pre-defined network and cannot be removed/);
  const rm = docker(s, ['network', 'rm', 'backend']);
  ok(t, rm);
  t.is(rm.stdout, 'backend\n');
  t.regex(docker(s, ['network', 'rm', 'backend']).stderr, /network backend not found/);
});

rtest('docker network prune removes unused user networks only', (t) => {
  const s = t.context.serve;
  ok(t, docker(s, ['network', 'create', '--label', 'keep=1', 'kept']));
  ok(t, docker(s, ['network', 'create', 'gone']));
  const prune = docker(s, ['network', 'prune', '-f', '--filter', 'label!=keep']);
  // label!= is a filter nsbox does not have: refused, nothing removed.
  t.not(prune.status, 0);
  const p = docker(s, ['network', 'prune', '-f']);
  ok(t, p);
  t.regex(p.stdout, /^Deleted Networks:\n/);
  t.true(p.stdout.includes('gone\n') && p.stdout.includes('kept\n') && p.stdout.includes('front\n'));
  t.false(p.stdout.includes('bridge'));
  t.is(docker(s, ['network', 'ls', '--format', '{{.Name}}']).stdout, 'bridge\nhost\nnone\n');
});

rtest('the Engine API: create body, filters, inspect and errors in docker\'s shapes', async (t) => {
  const sock = t.context.serve.socket;
  const c = await request(sock, 'POST', '/v1.41/networks/create', {
    Name: 'api-net',
    CheckDuplicate: true,
    Driver: 'bridge',
    EnableIPv6: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: '10.88.0.0/24' }, { Subnet: 'fd00:88::/64', Gateway: 'fd00:88::fe' }], Options: {} },
    Internal: false,
    Labels: { 'com.example': 'x' },
    Options: {},
  });
  t.is(c.status, 201, c.body);
  t.deepEqual(Object.keys(c.json), ['Id', 'Warning']);
  const id = c.json.Id as string;
  const i = await request(sock, 'GET', `/v1.41/networks/${id}`);
  t.is(i.status, 200);
  t.like(i.json, { Name: 'api-net', EnableIPv6: true, IPAM: { Config: [{ Subnet: '10.88.0.0/24', Gateway: '10.88.0.1' }, { Subnet: 'fd00:88::/64', Gateway: 'fd00:88::fe' }] } });
  const list = await request(sock, 'GET', `/v1.41/networks?filters=${encodeURIComponent(JSON.stringify({ label: { 'com.example=x': true } }))}`);
  t.deepEqual(list.json.map((n: { Name: string }) => n.Name), ['api-net']);
  const builtin = await request(sock, 'GET', `/v1.41/networks?filters=${encodeURIComponent(JSON.stringify({ type: ['builtin'] }))}`);
  t.deepEqual(builtin.json.map((n: { Name: string }) => n.Name).sort(), ['bridge', 'host', 'none']);
  const bad = await request(sock, 'GET', `/v1.41/networks?filters=${encodeURIComponent(JSON.stringify({ colour: ['red'] }))}`);
  t.is(bad.status, 400);
  t.is(bad.json.message, "invalid filter 'colour'");
  const dup = await request(sock, 'POST', '/v1.41/networks/create', { Name: 'api-net' });
  t.is(dup.status, 409);
  t.is(dup.json.message, 'network with name api-net already exists');
  const noName = await request(sock, 'POST', '/v1.41/networks/create', {});
  t.is(noName.status, 400);
  const range = await request(sock, 'POST', '/v1.41/networks/create', { Name: 'r', IPAM: { Config: [{ Subnet: '10.89.0.0/16', IPRange: '10.89.1.0/24' }] } });
  t.is(range.status, 400);
  t.regex(range.json.message, /IPRange is not supported/);
  t.is((await request(sock, 'GET', '/v1.41/networks/nope')).status, 404);
  t.is((await request(sock, 'DELETE', `/v1.41/networks/${id}`)).status, 204);
  t.is((await request(sock, 'DELETE', `/v1.41/networks/${id}`)).status, 404);
  const pruned = await request(sock, 'POST', '/v1.41/networks/prune');
  t.deepEqual(pruned.json, { NetworksDeleted: null });
});
