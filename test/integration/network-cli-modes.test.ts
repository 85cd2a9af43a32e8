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
  t.is(o.loopback6, o.fetched);
  t.regex(o.cliNetIO, /^\d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B$/);
  t.not(o.cliNetIO, '0B / 0B');
  t.regex(o.heldRunning, /^port 0\.0\.0\.0:18080\/tcp is already in use/);
  // a socket bound, not listening, is in no /proc/net table: the shim's fds say who holds it
  t.is(o.shimFd3, 'socket:[N]');
  t.is(o.nodeListen, 'EADDRINUSE');
  t.is(o.restarted, o.fetched);
  t.is(o.restarted6, o.fetched);
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
  t.is(o.docker.afterServeRestart.fetched6, o.docker.afterServeRestart.fetched);
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

run('IPv6: a dual-stack network (--ipv6 --subnet fd00:77::/64), addresses and routes on eth0, AAAA answers, published ports on [::1], [::] and the namespace IPv6 address, inspect and the API as docker', (t) => {
  const o = scenario('ipv6');
  t.true(o.networkInspect.EnableIPv6);
  t.deepEqual(o.networkInspect.IPAM.Config[1], { Subnet: 'fd00:77::/64', Gateway: 'fd00:77::1' });
  t.deepEqual(o.endpoint, { ipv6Address: 'fd00:77::2', ipv6PrefixLength: 64, ipv6Gateway: 'fd00:77::1', ipAddress: o.endpoint.ipAddress });
  t.regex(o.addr, /eth0\s+inet 172\.\d+\.0\.2\/16/);
  t.regex(o.addr, /eth0\s+inet6 fd00:77::2\/64 scope global/);
  t.regex(o.route6, /^default via fd00:77::1 dev eth0/);
  t.regex(o.hosts, /\nfd00:77::2\t[0-9a-f]{12}\n$/);
  const hostname = o.byAddress;
  t.regex(hostname, /^[0-9a-f]{12}\n$/);
  // container to container: by IPv6 address, and by name through aardvark's AAAA answer
  t.regex(o.aaaa, /Name:\s+web6\nAddress: fd00:77::2\n/);
  t.is(o.byName, hostname);
  // host to container: [::1] through the shim's proxy (-p 18090:80 and -p [::1]:18091:80), the
  // namespace's own IPv6 address through ip6 DNAT, 127.0.0.1 as before
  t.is(o.loopback6, hostname);
  t.is(o.loopback6Only, hostname);
  t.is(o.nsAddress6, hostname);
  t.is(o.loopback4, hostname);
  t.regex(o.only6NotOn4, /ECONNREFUSED/);
  t.regex(o.held6, /^port \[::\]:18090\/tcp is already in use by pid \d+ \(nsbox-shim\)/);
  t.is(o.port, '80/tcp -> 0.0.0.0:18090\n80/tcp -> [::]:18090\n80/tcp -> [::1]:18091\n');
  t.deepEqual(o.portRules, ['* 18090 -> 172.18.0.2 80', '* 18090 -> fd00:77::2 80']);
  // UDP on [::1] through the shim's relay (every address, and [::1] only), and on 127.0.0.1 (DNAT)
  t.deepEqual(o.udp6, { any: 'ping ::1 18094', only: 'ping ::1 18095', v4: 'ping 127.0.0.1 18094' });
  t.is(o.follow.udp, 'ping ::1 18095');
  // the [::1] relays follow connect/disconnect (shim and foreground CLI), refuse with no network
  t.regex(o.follow.moved, /^fd00:79::/);
  t.is(o.follow.shim, hostname);
  t.is(o.follow.shimAny, hostname);
  t.regex(o.follow.foreground, /^[0-9a-f]{12}\n$/);
  t.is(o.follow.noneShim, 'refused');
  t.is(o.follow.noneForeground, 'refused');
  t.is(o.follow.back, hostname);
  t.is(o.follow.backForeground, o.follow.foreground);
  // --ip6
  t.deepEqual(o.ip6.endpoints, ['fd00:77::99', 'fd00:79::42']);
  t.regex(o.ip6.addr, /eth0\s+inet6 fd00:77::99\/64 scope global/);
  t.regex(o.ip6.addr, /eth1\s+inet6 fd00:79::42\/64 scope global/);
  t.regex(o.ip6.twice.stderr, /Address already in use: fd00:77::99 on network v6net/);
  t.regex(o.ip6.outside.stderr, /no configured subnet or ip-range contain the IP address fd00:1::1/);
  t.regex(o.ip6.onBridge.stderr, /user specified IP address is supported on user defined networks only/);
  for (const r of [o.ip6.twice, o.ip6.outside, o.ip6.onBridge]) t.not(r.status, 0);
  t.regex(o.ip6.freed, /eth0\s+inet6 fd00:77::99\/64 scope global/);
  t.deepEqual(o.after6, { held6: 'free', loopback6: 'ERROR connect ECONNREFUSED ::1:18090' });
  t.deepEqual(o.left, NOTHING);
  if (!o.docker) return t.log('no docker CLI: the API part was skipped');
  t.is(o.docker.create, 0);
  t.true(o.docker.networkInspect.EnableIPv6);
  t.is(o.docker.run, 0);
  t.like(o.docker.settings.d6, { IPv6Gateway: 'fd00:78::1', GlobalIPv6Address: 'fd00:78::2', GlobalIPv6PrefixLen: 64 });
  t.is((Object.values(o.docker.containers)[0] as { IPv6Address: string }).IPv6Address, 'fd00:78::2/64');
  t.regex(o.docker.fetched, /^[0-9a-f]{12}\n$/);
  t.is(o.docker.rm, 0);
  t.is(o.docker.ip6, 0);
  t.like(o.docker.ip6Settings, { GlobalIPv6Address: 'fd00:78::77', IPAMConfig: { IPv6Address: 'fd00:78::77' } });
});

run('bad input through the CLI: overlapping subnets, a subnet on a route of the namespace, an unknown network, a port > 65535, -p garbage, an --ip outside the subnet, --ip/--ip6 without a user network; nothing half set up', (t) => {
  const o = scenario('bad');
  t.regex(o.overlap.stderr, /Pool overlaps with other one on this address space/);
  t.regex(o.routed.stderr, /subnet 10\.200\.1\.0\/24 overlaps a route of the host \(10\.200\.0\.0\/16\)/);
  t.regex(o.unknown.stderr, /network nope not found/);
  t.regex(o.bigPort.stderr, /invalid hostPort "70000"/);
  t.regex(o.garbage.stderr, /a:b:c:d/);
  t.regex(o.ipOutside.stderr, /10\.1\.1\.1/);
  for (const r of [o.ipDefault, o.ip6None, o.ipHost]) t.regex(r.stderr, /user specified IP address is supported on user defined networks only/);
  for (const r of [o.overlap, o.routed, o.unknown, o.bigPort, o.garbage, o.ipOutside, o.ipDefault, o.ip6None, o.ipHost]) t.not(r.status, 0);
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
