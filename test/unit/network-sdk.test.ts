/** The SDK's Network: create/get/list/remove/prune over a temp root, inspect in docker's shape. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Network, NetworkConflictError, NotFoundError, ValidationError } from '../../lib/index.js';

test('Network.create, get, list, inspect, remove, prune', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'nsbox-netsdk-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const deps = { root };
  const n = await Network.create({ name: 'app', subnet: '10.44.0.0/24', labels: { x: 'y' } }, deps);
  t.is(n.name, 'app');
  t.is(n.subnet, '10.44.0.0/24');
  t.is(n.gateway, '10.44.0.1');
  await t.throwsAsync(Network.create({ name: 'app' }, deps), { instanceOf: NetworkConflictError });
  await t.throwsAsync(Network.create({ name: 'x', internal: 'yes' as unknown as boolean }, deps), { instanceOf: ValidationError, message: /internal/ });
  const bridge = await Network.get('bridge', deps);
  t.is(bridge.subnet, '172.17.0.0/16');
  t.is((await Network.get(n.id.slice(0, 8), deps)).name, 'app');
  t.deepEqual((await Network.list({ label: ['x=y'] }, deps)).map((x) => x.name), ['app']);

  // An attached container shows in Containers with its address and docker's MAC (no record: no name).
  t.deepEqual(await n.endpoints(), []);
  const { NetworkStore } = await import('../../lib/network/index.js');
  const s = await NetworkStore.open({ root });
  await s.ipam.allocate(n.id, 'c'.repeat(64));
  const json = await n.inspect();
  t.like(json, { Name: 'app', Id: n.id, Driver: 'bridge', Scope: 'local', Labels: { x: 'y' }, IPAM: { Driver: 'default', Config: [{ Subnet: '10.44.0.0/24', Gateway: '10.44.0.1' }] } });
  t.deepEqual(json.Containers, { ['c'.repeat(64)]: { Name: '', EndpointID: '', MacAddress: '02:42:0a:2c:00:02', IPv4Address: '10.44.0.2/24', IPv6Address: '' } });
  await t.throwsAsync(n.remove(), { message: /has active endpoints/ });
  await s.ipam.release(n.id, 'c'.repeat(64));
  await Network.create({ name: 'spare' }, deps);
  t.deepEqual(await Network.prune({}, deps), ['app', 'spare']);
  await t.throwsAsync(Network.get('app', deps), { instanceOf: NotFoundError });
  t.deepEqual((await Network.list({}, deps)).map((x) => x.name), ['bridge']);
});
