/** lib/network IPAM: one address per container, never twice, also across processes and after kill -9. */
import { fork } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { NetworkConflictError, NotFoundError, ValidationError } from '../../lib/errors.js';
import { NetworkStore, macForIp } from '../../lib/network/index.js';
import { until } from '../fixtures/until.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'ipam-child.ts');

async function store(t: { teardown: (fn: () => Promise<void>) => void }): Promise<NetworkStore> {
  const root = await mkdtemp(path.join(tmpdir(), 'nsbox-ipam-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const procNet = path.join(root, 'proc-net');
  await mkdir(procNet);
  return NetworkStore.open({ root, procNet });
}

test("docker's MAC from the address", (t) => {
  t.is(macForIp('172.17.0.2'), '02:42:ac:11:00:02');
  t.is(macForIp('10.0.255.254'), '02:42:0a:00:ff:fe');
  t.throws(() => macForIp('::1'), { instanceOf: ValidationError });
});

test('addresses in order, skipping network, gateway and broadcast; the same container gets its own again', async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'small', subnet: '10.9.0.0/29', gateway: '10.9.0.2' });
  const a = await s.ipam.allocate(n.id, 'c1');
  t.deepEqual(a, { ipAddress: '10.9.0.1', prefixLength: 29, gateway: '10.9.0.2', macAddress: '02:42:0a:09:00:01' });
  t.deepEqual(await s.ipam.allocate(n.id, 'c1'), a);
  const rest = [];
  for (const c of ['c2', 'c3', 'c4', 'c5']) rest.push((await s.ipam.allocate(n.id, c)).ipAddress);
  t.deepEqual(rest, ['10.9.0.3', '10.9.0.4', '10.9.0.5', '10.9.0.6']);
  const e = await t.throwsAsync(s.ipam.allocate(n.id, 'c6'));
  t.is(e.message, 'no available IPv4 addresses on network small (10.9.0.0/29)');
  t.is((e as { code?: string }).code, 'EADDRNOTAVAIL');
  t.true(await s.ipam.release(n.id, 'c3'));
  t.false(await s.ipam.release(n.id, 'c3'));
  t.is((await s.ipam.allocate(n.id, 'c6')).ipAddress, '10.9.0.4');
  t.deepEqual(
    (await s.ipam.endpoints(n.id)).map((e) => `${e.ipAddress}=${e.containerId}`),
    ['10.9.0.1=c1', '10.9.0.3=c2', '10.9.0.4=c6', '10.9.0.5=c4', '10.9.0.6=c5'],
  );
});

test('a requested address: in the subnet, not reserved, not taken', async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'req', subnet: '10.8.0.0/24' });
  t.is((await s.ipam.allocate(n.id, 'a', '10.8.0.50')).ipAddress, '10.8.0.50');
  await t.throwsAsync(s.ipam.allocate(n.id, 'b', '10.8.0.50'), { instanceOf: NetworkConflictError, message: 'Address already in use: 10.8.0.50 on network req' });
  await t.throwsAsync(s.ipam.allocate(n.id, 'a', '10.8.0.51'), { instanceOf: NetworkConflictError, message: /already has the address 10.8.0.50/ });
  for (const bad of ['10.8.0.0', '10.8.0.1', '10.8.0.255', '10.9.0.5']) {
    await t.throwsAsync(s.ipam.allocate(n.id, 'b', bad), { instanceOf: ValidationError, message: new RegExp(`contain the IP address ${bad.replaceAll('.', '\\.')}`) }, bad);
  }
  await t.throwsAsync(s.ipam.allocate(n.id, 'b', 'nope'), { instanceOf: ValidationError, message: /invalid IPv4 address "nope"/ });
  await t.throwsAsync(s.ipam.allocate('f'.repeat(64), 'b'), { instanceOf: NotFoundError });
  await t.throwsAsync(s.ipam.allocate(n.id, '../x'), { instanceOf: ValidationError });
  t.deepEqual((await s.ipam.endpoints(n.id)).map((e) => e.containerId), ['a']);
});

test('an IPv6 network gives each container the same host part in its IPv6 subnet', async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'six', subnet: '10.7.0.0/24', ipv6: true, subnet6: 'fd00:7::/64' });
  t.like(await s.ipam.allocate(n.id, 'a'), { ipAddress: '10.7.0.2', ipv6Address: 'fd00:7::2', ipv6PrefixLength: 64, ipv6Gateway: 'fd00:7::1' });
});

test('a requested IPv6 address (--ip6): in the IPv6 subnet, not its base or gateway, never twice; its IPv4 twin passed over; freed with the container', async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'six', subnet: '10.8.0.0/24', ipv6: true, subnet6: 'fd00:8::/64' });
  const plain = await s.create({ name: 'four', subnet: '10.6.0.0/24' });
  // asked for the twin of the next IPv4 address: that IPv4 address goes to no one else
  t.like(await s.ipam.allocate(n.id, 'a', undefined, 'fd00:8:0:0::2'), { ipAddress: '10.8.0.2', ipv6Address: 'fd00:8::2' });
  t.like(await s.ipam.allocate(n.id, 'b', undefined, 'fd00:8::3'), { ipAddress: '10.8.0.3', ipv6Address: 'fd00:8::3' });
  t.like(await s.ipam.allocate(n.id, 'c', undefined, 'fd00:8::5'), { ipAddress: '10.8.0.4', ipv6Address: 'fd00:8::5' });
  t.like(await s.ipam.allocate(n.id, 'd'), { ipAddress: '10.8.0.6', ipv6Address: 'fd00:8::6' }, '10.8.0.5 skipped: its twin is c\'s');
  t.like(await s.ipam.allocate(n.id, 'c', undefined, 'fd00:8::5'), { ipAddress: '10.8.0.4', ipv6Address: 'fd00:8::5' }, 'the same again');
  const taken = await t.throwsAsync(s.ipam.allocate(n.id, 'e', undefined, 'fd00:8::6'), { instanceOf: NetworkConflictError });
  t.is(taken.message, 'Address already in use: fd00:8::6 on network six');
  for (const bad of ['fd00:9::1', 'fd00:8::', 'fd00:8::1']) {
    const e = await t.throwsAsync(s.ipam.allocate(n.id, 'e', undefined, bad), { instanceOf: ValidationError });
    t.is(e.message, `no configured subnet or ip-range contain the IP address ${bad}`);
  }
  await t.throwsAsync(s.ipam.allocate(n.id, 'e', undefined, '10.8.0.9'), { instanceOf: ValidationError, message: 'invalid IPv6 address "10.8.0.9"' });
  await t.throwsAsync(s.ipam.allocate(plain.id, 'e', undefined, 'fd00:8::9'), { instanceOf: ValidationError, message: 'no configured subnet or ip-range contain the IP address fd00:8::9' });
  t.deepEqual((await s.ipam.endpoints(n.id)).map((e) => e.ipAddress), ['10.8.0.2', '10.8.0.3', '10.8.0.4', '10.8.0.6']);
  t.true(await s.ipam.release(n.id, 'c'));
  t.like(await s.ipam.allocate(n.id, 'e', undefined, 'fd00:8::5'), { ipAddress: '10.8.0.4', ipv6Address: 'fd00:8::5' }, 'free again once released');
  // a failed claim (both addresses taken) leaves nothing of the caller's
  await t.throwsAsync(s.ipam.allocate(n.id, 'f', '10.8.0.7', 'fd00:8::2'), { instanceOf: NetworkConflictError });
  t.like(await s.ipam.allocate(n.id, 'g', '10.8.0.7'), { ipAddress: '10.8.0.7', ipv6Address: 'fd00:8::7' });
  const files = (await readdir(path.join(s.layout.networkIps(n.id)))).sort();
  t.deepEqual(files, ['10.8.0.2', '10.8.0.3', '10.8.0.4', '10.8.0.6', '10.8.0.7', 'fd00:8::2', 'fd00:8::3', 'fd00:8::5', 'fd00:8::6', 'fd00:8::7']);
  await s.ipam.repair(['a', 'b']);
  t.deepEqual((await readdir(path.join(s.layout.networkIps(n.id)))).sort(), ['10.8.0.2', '10.8.0.3', 'fd00:8::2', 'fd00:8::3']);
});

test('several processes allocating at once never get the same address', async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'race', subnet: '10.6.0.0/24' });
  const got: { containerId: string; ipAddress: string }[] = [];
  const run = (prefix: string) =>
    new Promise<void>((resolve, reject) => {
      const child = fork(CHILD, [s.layout.root, n.id, prefix, '15'], { execArgv: ['--import=tsx'], stdio: 'inherit' });
      child.on('message', (m) => got.push(m as { containerId: string; ipAddress: string }));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child ${prefix} exited with ${code}`))));
    });
  await Promise.all(['p', 'q', 'r', 's'].map(run));
  t.is(got.length, 60);
  t.is(new Set(got.map((g) => g.ipAddress)).size, 60);
  const endpoints = await s.ipam.endpoints(n.id);
  const pairs = (list: { ipAddress: string; containerId: string }[]) => list.map((e) => `${e.ipAddress}=${e.containerId}`).sort();
  t.deepEqual(pairs(endpoints), pairs(got));
});

test('after kill -9 mid-allocation, repair frees what no live container holds and leaves no temp file', async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'crash', subnet: '10.5.0.0/16' });
  await s.ipam.allocate(n.id, 'live-1');
  const seen: string[] = [];
  const child = fork(CHILD, [s.layout.root, n.id, 'dead', '100000'], { execArgv: ['--import=tsx'], stdio: 'inherit' });
  child.on('message', (m) => seen.push((m as { ipAddress: string }).ipAddress));
  await until('the child to allocate', () => seen.length >= 20);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  const dir = s.layout.networkIps(n.id);
  // What a crash can leave besides allocations: a temp file, and a network directory without a record.
  await writeFile(path.join(dir, '.10.5.9.9.tmp-abcdef'), 'dead-x\n');
  await mkdir(path.join(s.layout.networksDir, 'e'.repeat(64), 'ips'), { recursive: true });
  await writeFile(path.join(s.layout.networksDir, 'e'.repeat(64), 'ips', '10.1.0.2'), 'ghost\n');
  const freed = await s.ipam.repair(['live-1']);
  t.true(freed.length >= seen.length);
  t.true(freed.every((f) => f.containerId.startsWith('dead-')));
  t.deepEqual(await readdir(dir), ['10.5.0.2']);
  t.deepEqual(await readdir(path.join(path.dirname(dir), 'containers')), ['live-1']);
  t.false((await readdir(s.layout.networksDir)).includes('e'.repeat(64)));
  t.is((await s.ipam.allocate(n.id, 'live-2')).ipAddress, '10.5.0.3');
  // A crash between the claim and the containers/ file: release still finds the address.
  await rm(path.join(path.dirname(dir), 'containers', 'live-2'));
  t.true(await s.ipam.release(n.id, 'live-2'));
  t.deepEqual(await readdir(dir), ['10.5.0.2']);
});

test("a container's address file that cannot be read is an error, not \"no address\"", async (t) => {
  const s = await store(t);
  const n = await s.create({ name: 'unreadable', subnet: '10.9.1.0/29' });
  // A directory where the containers/ file belongs: reading it fails with EISDIR, which is no
  // "nothing recorded" (ENOENT) and so is not taken for one.
  await mkdir(path.join(path.dirname(s.layout.networkIps(n.id)), 'containers', 'c1'), { recursive: true });
  await t.throwsAsync(s.ipam.allocate(n.id, 'c1'), { code: 'EISDIR' });
  t.deepEqual(await s.ipam.endpoints(n.id), []);
});
