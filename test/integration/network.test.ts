/**
 * Bridge networking against the real kernel, each scenario in a network and mount namespace the
 * test makes (`unshare -n --mount --propagation private`, lo up, 192.168.77.2 on lo as "the host's
 * address"): bridges, veths, nft rules and sysctls exist only there, never in the host's namespace.
 * The scenarios (test/fixtures/network-child.ts) use the SDK and print what they saw as JSON.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, rootfs } from './_helpers.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'network-child.ts');
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns'].filter((f) => !existsSync(f));
const libnft = ['/usr/lib/x86_64-linux-gnu/libnftables.so.1', '/usr/lib/aarch64-linux-gnu/libnftables.so.1'].some((f) => existsSync(f));

function scenario(name: string, env: Record<string, string> = {}): Record<string, any> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-net-'));
  try {
    const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, name, rootfs(), tmp], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 150_000,
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

const run = isRoot && libnft && missing.length === 0 ? test.serial : test.serial.skip;
if (!isRoot) test('network tests need root (skipped)', (t) => t.log('not root: bridge networking needs CAP_NET_ADMIN'));
else if (!libnft || missing.length) test('network tests need nftables and aardvark-dns (skipped)', (t) => t.log(`missing ${[...missing, ...(libnft ? [] : ['libnftables1'])].join(', ')}: bash test/install-deps.sh`));

run('published ports: 127.0.0.1, the namespace address, random ports, hairpin, UDP, a busy port, release', (t) => {
  const o = scenario('ports');
  t.deepEqual(o.ports.map((p: { host: string; port: number }) => p.host), ['0.0.0.0', '127.0.0.1', '0.0.0.0']);
  t.is(o.ports[0].port, 18080);
  t.true(o.ports[1].port > 0 && o.ports[2].port > 0);
  // port(n): the first binding, as the host reaches it (0.0.0.0 as loopback).
  t.deepEqual(o.firstPort, { host: '127.0.0.1', port: 18080 });
  t.is(o.loopback, 'web\n');
  t.is(o.loopbackV6, 'web\n');
  t.is(o.nsAddress, 'web\n');
  t.is(o.randomLoopback, 'web\n');
  t.is(o.randomAny, 'web\n');
  // Published on 127.0.0.1 only: not on the namespace's other address.
  t.regex(o.loopbackOnlyFromNsAddress, /ECONNREFUSED/);
  t.is(o.hairpin, 'web\n');
  t.is(o.hairpinGateway, 'web\n');
  t.is(o.udp, 'ping-udp');
  t.regex(o.busy, /^PortInUseError: port 0\.0\.0\.0:18081\/tcp is already in use by pid \d+ \(node\)/);
  t.deepEqual(o.busyLeft, { links: 0, netns: 0 });
  t.regex(o.afterRemove, /ECONNREFUSED/);
  t.true(o.rebound);
});

run('DNS on a user network by name and alias; none on the default bridge; hosts and hostname files', (t) => {
  const o = scenario('dns');
  t.regex(o.byName, /Name:\s+db\nAddress: 172\.\d+\.0\.2/);
  t.regex(o.byAlias, /Name:\s+database\nAddress: 172\.\d+\.0\.2/);
  t.regex(o.resolv, /^nameserver 172\.\d+\.0\.1\n$/);
  t.notRegex(o.defaultBridge, /Address: 172\./);
  t.regex(o.hosts, /^127\.0\.0\.1\tlocalhost\n/);
  t.regex(o.hosts, /\n172\.17\.0\.\d+\th1\nh1\n$/);
});

run('IPv6 from the SDK: a published port on [::1] through the in-process proxy, a container by name (AAAA) and IPv6 address; the default MTU and a network\'s mtu option', (t) => {
  const o = scenario('ipv6');
  t.is(o.loopback6, 'web\n');
  t.deepEqual(o.ports, ['0.0.0.0', '::']);
  t.is(o.followed, 'web\n', 'after a connect to a second network and a disconnect from the first');
  t.is(o.back, 'web\n');
  t.is(o.udp6, 'ping-udp6');
  t.is(o.byName, 'web\n');
  t.regex(o.after, /ECONNREFUSED/);
  // the default MTU (65520: bench/network.ts), and a network's own option
  t.regex(o.mtu, / mtu 65520 /);
  t.regex(o.mtuOption, / mtu 1400 /);
  t.deepEqual(o.left, { links: [], netns: [], portRules: 0, dns: 0, ips: [] });
});

run('an internal network has no route out; bridge has; none and host unchanged', (t) => {
  const o = scenario('internal');
  t.notRegex(o.internalRoute, /default/);
  t.regex(o.internalOut, /unreachable/i);
  t.regex(o.bridgeRoute, /^default via 172\.17\.0\.1 dev eth0/);
  t.is(o.bridgeOut, 'outside\n');
  t.regex(o.none, /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  t.notRegex(o.none, /eth0/);
  t.regex(o.host, /192\.168\.77\.2\/24/);
});

run('containers started and removed leave no veth, namespace, nft element, DNS entry or address', (t) => {
  const o = scenario('leaks', { LEAK_COUNT: '30' });
  t.deepEqual(o.left, { links: [], netns: [], portRules: 0, dns: 0, ips: [] });
});

run('kill -9 of the process that set a container up, then repair removes what it left', (t) => {
  const o = scenario('crash');
  t.regex(o.crashed, /^SIGKILL started 172\./);
  t.is(o.before.netns.length, 1);
  t.is(o.before.portRules, 2);
  t.is(o.before.dns, 1);
  t.deepEqual(o.after, { links: [], netns: [], portRules: 0, dns: 0, ips: [] });
});

run('removing port rules: one gone already is passed over, another failure is thrown', (t) => {
  const out = scenario('nft-delete');
  t.deepEqual(out.left, []);
  t.is(out.refused, 'ERR_NFT');
});
