/**
 * The CLI's and `nsbox serve`'s networking against the real kernel, each scenario in a network and
 * mount namespace the test makes (`unshare -n --mount --propagation private`, lo up, 192.168.77.2 on
 * lo as "the host's address"): bridges, veths, nft rules and held ports exist only there. The
 * scenarios are test/fixtures/network-cli-child.ts; each prints what it saw as JSON.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, rootfs } from './_helpers.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'network-cli-child.ts');
const dist = path.join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns', dist].filter((f) => !existsSync(f));
const libnft = ['/usr/lib/x86_64-linux-gnu/libnftables.so.1', '/usr/lib/aarch64-linux-gnu/libnftables.so.1'].some((f) => existsSync(f));
const run = isRoot && libnft && missing.length === 0 ? test.serial : test.serial.skip;
if (!isRoot || !libnft || missing.length) test('network CLI tests need root, nftables, aardvark-dns and dist/ (skipped)', (t) => t.log(`missing: ${[...missing, ...(libnft ? [] : ['libnftables1']), ...(isRoot ? [] : ['root'])].join(', ')}`));

function scenario(name: string): Record<string, any> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-netcli-'));
  try {
    const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, name, rootfs(), tmp], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) throw new Error(`scenario ${name} printed no result (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
    const out = JSON.parse(line) as Record<string, any>;
    if (out.error) throw new Error(`scenario ${name}: ${out.error}`);
    return out;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const NOTHING = { links: [], netns: [], portRules: 0, dns: 0, ips: [], held: [] };

run('published host ports are held by the shim for the container life: restart, random ports, a killed shim, a restarted daemon', (t) => {
  const o = scenario('held');
  t.is(o.fetched, `${o.fetched.trim()}\n`);
  t.regex(o.cliNetIO, /^\d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B$/);
  t.not(o.cliNetIO, '0B / 0B');
  t.regex(o.heldRunning, /^port 0\.0\.0\.0:18080\/tcp is already in use/);
  // a socket bound, not listening, is in no /proc/net table: the shim's fds say who holds it
  t.is(o.shimFd3, 'socket:[N]');
  t.is(o.nodeListen, 'EADDRINUSE');
  t.is(o.restarted, o.fetched);
  t.regex(o.heldRestarted, /already in use/);
  t.true(o.newShim);
  t.is(o.afterStop, 'free');
  t.true(o.random.same);
  t.regex(o.random.fetched, /^[0-9a-f]{12}\n$/);
  t.regex(o.random.held, /already in use/);
  t.is(o.shimKilled, 'free');
  t.deepEqual(o.left, NOTHING);
  if (!o.docker) return t.log('no docker CLI: the daemon part was skipped');
  t.is(o.docker.run, 'ok');
  t.regex(o.docker.netio, /^\d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B\n$/);
  t.not(o.docker.netio, '0B / 0B\n');
  t.regex(o.docker.afterServeRestart.fetched, /^[0-9a-f]{12}\n$/);
  t.regex(o.docker.afterServeRestart.held, /already in use/);
  t.regex(o.docker.afterServeRestart.port, /^80\/tcp -> 0\.0\.0\.0:18082\n/);
  t.is(o.docker.restart, 0);
  t.regex(o.docker.restarted.held, /already in use/);
  t.is(o.docker.rm, 0);
  t.deepEqual(o.docker.left, NOTHING);
});

run('the CLI: --network-alias and --ip, container:<name>, -P with the image EXPOSE, create then start, network connect and disconnect (first and last network too), DNS across a second network', (t) => {
  const o = scenario('modes');
  t.is(o.dbIp, '10.90.0.50');
  t.regex(o.byAlias, /Name:\s+database\nAddress: 10\.90\.0\.50/);
  t.not(o.ipTaken.status, 0);
  t.regex(o.ipTaken.stderr, /10\.90\.0\.50/);
  t.regex(o.shared, /eth0\s+inet 10\.90\.0\.50\/24/);
  t.true(o.shared.endsWith(`${o.dbHostname}\n`), o.shared);
  t.not(o.sharedStopped.status, 0);
  t.regex(o.sharedStopped.stderr, /nope/);
  t.regex(o.publishAll, /^53\/udp -> 0\.0\.0\.0:\d+$/m);
  t.regex(o.publishAll, /^80\/tcp -> 0\.0\.0\.0:\d+$/m);
  t.regex(o.publishAllFetched, /^[0-9a-f]{12}\n$/);
  t.is(o.created, 'created');
  t.deepEqual(o.lateNetworks, ['u1', 'u2']);
  t.deepEqual(o.dbNetworks, ['u1', 'u2']);
  t.regex(o.extraByAlias, /Name:\s+extra-db\nAddress: 10\.91\.0\.\d+/);
  t.regex(o.secondNetworkDns, /Name:\s+only2\nAddress: 10\.91\.0\.\d+/);
  t.notRegex(o.afterDisconnect, /Address: 10\.91/);
  t.regex(o.notConnected.stderr, /is not connected to network u2/);
  t.deepEqual(o.firstLeft.networks, ['u2']);
  t.regex(o.firstLeft.fetched, /^[0-9a-f]{12}\n$/);
  t.regex(o.firstLeft.route, /^default via 10\.91\.0\.1 dev eth1/);
  t.deepEqual(o.lastLeft.networks, []);
  t.false(o.lastLeft.links);
  t.regex(o.lastLeft.fetched, /ERROR/);
  t.regex(o.lastLeft.held, /already in use/);
  t.regex(o.reconnected, /^[0-9a-f]{12}\n$/);
  t.deepEqual(o.left, NOTHING);
});

run('bad input through the CLI: overlapping subnets, a subnet on a route of the namespace, an unknown network, a port > 65535, -p garbage, an --ip outside the subnet; nothing half set up', (t) => {
  const o = scenario('bad');
  t.regex(o.overlap.stderr, /Pool overlaps with other one on this address space/);
  t.regex(o.routed.stderr, /subnet 10\.200\.1\.0\/24 overlaps a route of the host \(10\.200\.0\.0\/16\)/);
  t.regex(o.unknown.stderr, /network nope not found/);
  t.regex(o.bigPort.stderr, /invalid hostPort "70000"/);
  t.regex(o.garbage.stderr, /a:b:c:d/);
  t.regex(o.ipOutside.stderr, /10\.1\.1\.1/);
  for (const r of [o.overlap, o.routed, o.unknown, o.bigPort, o.garbage, o.ipOutside]) t.not(r.status, 0);
  t.is(o.networks, 'u1\n');
  t.is(o.containers, '');
  t.deepEqual(o.left, { links: [], netns: [], portRules: 0, dns: 0, ips: [], held: [] });
});

run('kill -9 of the CLI and of nsbox serve mid-setup, then repair (system prune, serve start) leaves nothing', (t) => {
  const o = scenario('crash');
  t.is(o.cli, 'SIGKILL at setup');
  t.deepEqual(o.cliLeft, NOTHING);
  if (!o.serve) return t.log('no docker CLI: the serve part was skipped');
  t.is(o.serve, 'SIGKILL at setup');
  t.deepEqual(o.serveLeft, NOTHING);
});
