/** lib/network NetworkStore: docker's rules for names, subnets and gateways; get, list, remove, prune. */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { InvalidStateError, NetworkConflictError, NotFoundError, ValidationError } from '../../lib/errors.js';
import { NetworkStore, formatIp, parseCidr, parseIp, readRoutes } from '../../lib/network/index.js';

// /proc/net/route and ipv6_route of a namespace with a default route, 192.168.0.0/24 and
// 172.18.0.0/16 on eth0, and fd00:1::/64.
const ROUTE = [
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
  'eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  'eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
  'eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
].join('\n');
const IPV6_ROUTE = [
  'fd000001000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
  '00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000001 00000000 00200001       lo',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0',
].join('\n');

async function store(t: { teardown: (fn: () => Promise<void>) => void }, routes = true): Promise<NetworkStore> {
  const root = await mkdtemp(path.join(tmpdir(), 'nsbox-netstore-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const procNet = path.join(root, 'proc-net');
  await mkdir(procNet);
  if (routes) {
    await writeFile(path.join(procNet, 'route'), `${ROUTE}\n`);
    await writeFile(path.join(procNet, 'ipv6_route'), `${IPV6_ROUTE}\n`);
  }
  let clock = Date.parse('2026-12-06T00:00:00Z');
  return NetworkStore.open({ root, procNet, now: () => new Date((clock += 1000)) });
}

test('cidr: parse, print, host bits refused with the network meant', (t) => {
  t.is(formatIp(6, parseIp('fd00:0:0:1::')!.value), 'fd00:0:0:1::');
  t.is(formatIp(6, parseIp('2001:db8:0:0:1:0:0:1')!.value), '2001:db8::1:0:0:1');
  t.is(formatIp(6, parseIp('::ffff:1.2.3.4')!.value), '::ffff:102:304');
  t.is(formatIp(6, 0n), '::');
  t.deepEqual(parseCidr('10.0.0.0/8'), { family: 4, base: 0x0a000000n, prefix: 8 });
  t.throws(() => parseCidr('10.0.0.5/8'), { instanceOf: ValidationError, message: 'invalid subnet 10.0.0.5/8: it should be 10.0.0.0/8' });
  for (const bad of ['10.0.0.0', '10.0.0.0/33', 'x/8', '10.0.0.0/', '10.0.0.0/-1', 'fd00::/129']) {
    t.throws(() => parseCidr(bad), { instanceOf: ValidationError, message: /invalid subnet/ }, bad);
  }
});

test('routes from procfs, default routes left out', async (t) => {
  const s = await store(t);
  const routes = await readRoutes(path.join(s.layout.root, 'proc-net'));
  t.deepEqual(
    routes.map((r) => `${formatIp(r.family, r.base)}/${r.prefix}`),
    ['192.168.0.0/24', '172.18.0.0/16', 'fd00:1::/64'],
  );
  t.deepEqual(await readRoutes(path.join(s.layout.root, 'nowhere')), []);
});

test('the default network takes 172.17.0.0/16 on first use, once; user networks skip what routes and networks hold', async (t) => {
  const s = await store(t);
  const [d1, d2] = await Promise.all([s.ensureDefault(), s.ensureDefault()]);
  t.is(d1.id, d2.id);
  t.like(d1, { name: 'bridge', subnet: '172.17.0.0/16', gateway: '172.17.0.1', bridge: 'nsbox0', internal: false, ipv6: false });
  const a = await s.create({ name: 'a' });
  t.like(a, { subnet: '172.19.0.0/16', gateway: '172.19.0.1', bridge: `nsbr-${a.id.slice(0, 10)}`, driver: 'bridge' });
  t.is((await s.create({ name: 'b', labels: { x: '1' }, options: { 'com.docker.network.driver.mtu': '1400' } })).subnet, '172.20.0.0/16');
  t.is((await readdir(s.layout.networksDir)).filter((f) => f.endsWith('.json')).length, 3);
});

test('the pools run out into 192.168.x.0/20, skipping the routed 192.168.0.0/24', async (t) => {
  const s = await store(t);
  for (let b = 19; b <= 31; b++) await s.create({ name: `n${b}` });
  t.is((await s.create({ name: 'next' })).subnet, '192.168.16.0/20');
});

test("bad input is refused with docker's words, and nothing is written", async (t) => {
  const s = await store(t);
  await s.create({ name: 'taken', subnet: '10.1.0.0/16' });
  const cases: [Parameters<NetworkStore['create']>[0], new (...a: never[]) => Error, RegExp][] = [
    [{ name: 'taken' }, NetworkConflictError, /^network with name taken already exists$/],
    [{ name: 'bridge' }, NetworkConflictError, /^network with name bridge already exists$/],
    [{ name: 'host' }, NetworkConflictError, /^network with name host already exists$/],
    [{ name: 'x', subnet: '10.1.128.0/17' }, NetworkConflictError, /^Pool overlaps with other one on this address space: 10.1.128.0\/17 overlaps network taken \(10.1.0.0\/16\)$/],
    [{ name: 'x', subnet: '192.168.0.0/16' }, NetworkConflictError, /^subnet 192.168.0.0\/16 overlaps a route of the host \(192.168.0.0\/24\)$/],
    [{ name: 'x', subnet: '10.2.0.1/16' }, ValidationError, /it should be 10.2.0.0\/16/],
    [{ name: 'x', subnet: 'garbage' }, ValidationError, /invalid subnet "garbage"/],
    [{ name: 'x', subnet: '10.2.0.0/31' }, ValidationError, /too small/],
    [{ name: 'x', subnet: 'fd00:9::/64' }, ValidationError, /not an IPv4 subnet/],
    [{ name: 'x', subnet: '10.2.0.0/16', gateway: '10.3.0.1' }, ValidationError, /no matching subnet for gateway 10.3.0.1/],
    [{ name: 'x', subnet: '10.2.0.0/16', gateway: '10.2.255.255' }, ValidationError, /no matching subnet for gateway/],
    [{ name: 'x', gateway: '10.2.0.1' }, ValidationError, /a gateway needs the subnet/],
    [{ name: 'x', ipv6: true, subnet6: 'fd00:1::/64' }, NetworkConflictError, /overlaps a route of the host \(fd00:1::\/64\)/],
    [{ name: 'x', subnet6: 'fd00:2::/64' }, ValidationError, /needs IPv6 enabled/],
    [{ name: 'x', subnet: '10.3.0.0/16', ipv6: true, subnet6: 'fd00:3::/120' }, ValidationError, /IPv6 subnet fd00:3::\/120 is smaller than the IPv4 subnet 10.3.0.0\/16: give a \/112 or larger/],
    [{ name: 'bad name!' }, ValidationError, /invalid network options: name/],
    [{ name: 'x', driver: 'macvlan' as 'bridge' }, ValidationError, /plugin "macvlan" not found/],
  ];
  for (const [opts, cls, message] of cases) {
    await t.throwsAsync(s.create(opts), { instanceOf: cls, message }, JSON.stringify(opts));
  }
  t.deepEqual((await s.list()).map((n) => n.name), ['taken']);
});

test('IPv6: a unique local /64 when none is given', async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'six', ipv6: true });
  const c = parseCidr(n.subnet6!);
  t.is(c.prefix, 64);
  t.is(c.base >> 120n, 0xfdn);
  t.is(n.gateway6, formatIp(6, c.base + 1n));
});

test('get by id, name and unique prefix', async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'web' });
  t.is((await s.get(n.id)).name, 'web');
  t.is((await s.get('web')).id, n.id);
  t.is((await s.get(n.id.slice(0, 5))).id, n.id);
  await t.throwsAsync(s.get('nope'), { instanceOf: NotFoundError, message: 'network nope not found' });
});

test('list filters: name, id, label, driver, type, dangling, until', async (t) => {
  const s = await store(t);
  const d = await s.ensureDefault();
  const web = await s.create({ name: 'web-front', labels: { tier: 'front', env: 'prod' } });
  const db = await s.create({ name: 'db', labels: { tier: 'back' } });
  await s.ipam.allocate(db.id, 'c1');
  const names = async (f: Parameters<NetworkStore['list']>[0]) => (await s.list(f)).map((n) => n.name);
  t.deepEqual(await names({}), ['bridge', 'web-front', 'db']);
  t.deepEqual(await names({ name: ['web'] }), ['web-front']);
  t.deepEqual(await names({ name: ['^db$', '^bridge'] }), ['bridge', 'db']);
  t.deepEqual(await names({ id: [web.id.slice(0, 12)] }), ['web-front']);
  t.deepEqual(await names({ label: ['tier'] }), ['web-front', 'db']);
  t.deepEqual(await names({ label: ['tier=front', 'env=prod'] }), ['web-front']);
  t.deepEqual(await names({ label: ['tier=front', 'env=dev'] }), []);
  t.deepEqual(await names({ driver: ['bridge'] }), ['bridge', 'web-front', 'db']);
  t.deepEqual(await names({ driver: ['overlay'] }), []);
  t.deepEqual(await names({ type: ['builtin'] }), ['bridge']);
  t.deepEqual(await names({ type: ['custom'] }), ['web-front', 'db']);
  t.deepEqual(await names({ dangling: true }), ['web-front']);
  t.deepEqual(await names({ dangling: false }), ['bridge', 'db']);
  t.deepEqual(await names({ until: [d.created] }), []);
  t.deepEqual(await names({ until: [db.created] }), ['bridge', 'web-front']);
  await t.throwsAsync(s.list({ type: ['weird'] }), { instanceOf: ValidationError });
});

test('remove refuses while containers are attached and for bridge; prune removes only unused user networks', async (t) => {
  const s = await store(t);
  await s.ensureDefault();
  const used = await s.create({ name: 'used' });
  await s.create({ name: 'idle', labels: { keep: 'no' } });
  await s.create({ name: 'kept', labels: { keep: 'yes' } });
  await s.ipam.allocate(used.id, 'c1');
  await t.throwsAsync(s.remove('used'), {
    instanceOf: InvalidStateError,
    message: `error while removing network: network used id ${used.id} has active endpoints`,
  });
  await t.throwsAsync(s.remove('bridge'), { instanceOf: InvalidStateError, message: 'bridge is a pre-defined network and cannot be removed' });
  t.deepEqual((await s.prune({ label: ['keep=no'] })).map((n) => n.name), ['idle']);
  await s.ipam.release(used.id, 'c1');
  t.is((await s.remove(used.id.slice(0, 8))).name, 'used');
  await t.throwsAsync(s.get('used'), { instanceOf: NotFoundError });
  t.deepEqual((await s.prune()).map((n) => n.name), ['kept']);
  t.deepEqual((await s.list()).map((n) => n.name), ['bridge']);
  t.deepEqual((await readdir(s.layout.networksDir)).filter((f) => !f.endsWith('.lock')).length, 1);
});
