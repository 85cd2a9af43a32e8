/**
 * Rootless networking (lib/network/rootless-net.ts): a user with subordinate ids runs SDK
 * containers with `network: 'bridge'` and published ports, through pasta, inside a network and
 * mount namespace this test makes (`unshare -n -m`): a veth pair gives that namespace an address
 * (10.99.0.1) and a default route, /dev/net/tun is bound there as a 0666 node (udev's mode; this
 * VM's is 0600), and the host's own namespace is never touched. Asserted from the container's
 * output, real connections, and /proc (pasta's process).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { isRoot, rootfs, skipIf, unprivilegedCanRead } from './_helpers.js';
import { exitOfPidfd, pidfdOf } from '../../lib/runtime/process-exit.js';

const USER = 'nsbox-rootless-net';
const lib = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));
const reason = !isRoot
  ? 'needs root to create the test user and its namespaces'
  : !existsSync('/usr/bin/pasta')
    ? 'pasta is not installed (Debian package passt)'
    : !existsSync('/usr/bin/newuidmap')
      ? 'newuidmap/newgidmap are not installed (Debian package uidmap)'
      : spawnSync('useradd', ['--help']).status !== 0 || spawnSync('setpriv', ['--version']).status !== 0
        ? 'useradd or setpriv is missing'
        : !unprivilegedCanRead()
          ? 'an unprivileged user cannot read this checkout (clone it where others can)'
          : undefined;
const rtest = skipIf(reason, test.serial);

let uid = 0;
let gid = 0;
let work = '';
test.before(() => {
  if (reason) return;
  spawnSync('userdel', [USER]);
  execFileSync('useradd', ['-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', USER]);
  const has = (f: string) => existsSync(f) && readFileSync(f, 'utf8').split('\n').some((l) => l.startsWith(`${USER}:`));
  if (!has('/etc/subuid') || !has('/etc/subgid')) execFileSync('usermod', ['--add-subuids', '400000-465535', '--add-subgids', '400000-465535', USER]);
  uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
  gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim());
  work = mkdtempSync(join(tmpdir(), 'nsbox-rootless-net-'));
  chmodSync(work, 0o755);
  // a home, a runtime dir and a store of its own: /tmp/.local would be another rootless test user's
  for (const d of ['home', 'run', 'store']) {
    mkdirSync(join(work, d), { mode: 0o700 });
    chownSync(join(work, d), uid, gid);
  }
});
test.after.always(() => {
  if (reason) return;
  spawnSync('userdel', [USER]);
  rmSync(work, { recursive: true, force: true });
});

/** Runs `script` (an ES module) as the test user inside a fresh network + mount namespace; its last stdout line is JSON. */
function inNamespace(script: string, env: Record<string, string> = {}, timeout = 90_000): { out: unknown; stderr: string; status: number | null } {
  const setup = [
    `mknod -m 666 ${work}/tun c 10 200 && mount --bind ${work}/tun /dev/net/tun`,
    'ip link set lo up',
    'ip link add nsbt0 type veth peer name nsbt1',
    'ip addr add 10.99.0.1/24 dev nsbt0 && ip link set nsbt0 up && ip link set nsbt1 up',
    'ip route add default via 10.99.0.2 dev nsbt0',
    // an IPv6 route too: pasta then forwards [::1] and [::] as well
    'ip -6 addr add fd99::1/64 dev nsbt0 nodad && ip -6 route add default via fd99::2 dev nsbt0',
    `exec setpriv --reuid=${uid} --regid=${gid} --init-groups "$@"`,
  ].join(' && ');
  rmSync(join(work, 'tun'), { force: true });
  const r = spawnSync('unshare', ['-n', '-m', '--propagation', 'private', '--', 'bash', '-c', setup, 'bash', process.execPath, '--import=tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, HOME: join(work, 'home'), XDG_RUNTIME_DIR: join(work, 'run'), ...env },
    timeout,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let out: unknown;
  try {
    out = JSON.parse(last);
  } catch {
    // not JSON: the script failed before its report; status and stderr say why
    out = last;
  }
  return { out, stderr: r.stderr, status: r.status };
}

/** Gone, or a zombie its new parent (init) has not reaped yet. */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    // ENOENT: reaped
    return true;
  }
}

rtest('the CLI and nsbox serve without root: outbound, published ports ([::1] too), restart, kill -9 of the shim and of a foreground CLI, clear errors, nothing left', (t) => {
  const tar = join(work, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs(), '-cf', tar, '.']);
  chmodSync(tar, 0o644);
  const child = fileURLToPath(new URL('../fixtures/rootless-cli-child.ts', import.meta.url));
  const { out, stderr, status } = inNamespace(`await import(${JSON.stringify(child)});`, { NSBOX_ROOT: join(work, 'store', 'nsbox'), NSBOX_TEST_TAR: tar }, 240_000);
  t.is(status, 0, stderr);
  const o = out as Record<string, any>;
  t.falsy(o.error);
  t.is(o.outbound, 'eth0 10.0.2.100/24\nhello 10.99.0.1\n', 'the default network without root is pasta (outbound to the namespace address)');
  const hostname = o.ports.v4 as string;
  t.regex(hostname, /^[0-9a-f]{12}\n$/);
  t.deepEqual(o.ports, { v4: hostname, v6: hostname, ns: hostname, random: hostname }, '127.0.0.1, [::1], the namespace address and a random port');
  t.is(o.ps, true, 'ps shows both bindings');
  t.regex(o.busy, /Bind for 0\.0\.0\.0:18080 failed: port is already allocated \(container web\)/);
  t.regex(o.taken, /port 0\.0\.0\.0:18083\/tcp is already in use by pid \d+ \(node\)/);
  t.deepEqual(o.restarted, { fixed: hostname, random: hostname, pastas: 1, same: false }, 'restart: a new pasta on the same host ports');
  t.like(o.afterShimKill, { fetched: hostname, pidFiles: 1, containerDied: true }, 'the container dies with its killed shim; start works at once');
  t.log(`the killed shim was ${o.afterShimKill.shimState} at the start`);
  t.is(o.cliKilled, 'ECONNREFUSED');
  t.regex(o.errors.userNetwork, /network mynet: user-defined networks need root/);
  t.regex(o.errors.container, /network container:web: without root a container cannot join another's network namespace/);
  t.regex(o.errors.connect, /network connect: without root a container keeps the network it was started with/);
  t.regex(o.errors.networkCreate, /network create mynet: user-defined networks need root/);
  t.is(o.errors.networks, '', 'no network was made');
  if (o.docker.run === 'ok') {
    t.regex(o.docker.fetched, /^[0-9a-f]{12}\n$/);
    t.regex(o.docker.port, /^80\/tcp -> 0\.0\.0\.0:18086$/m);
    t.is(o.docker.rm, 0);
    t.deepEqual(o.dockerLeft, { free: true, pastas: 1 });
    t.not(o.dockerNetworkCreate.status, 0);
    t.regex(o.dockerNetworkCreate.stderr, /network create apinet: user-defined networks need root/);
  } else t.log(`no docker CLI: ${o.docker.run}`);
  t.deepEqual(o.left, { pastas: [], free: [true, true], pidFiles: 0, containers: '' }, 'nothing left: no pasta, no port, no pid file');
});

const prelude = `
  import { Container } from ${JSON.stringify(lib)};
  import http from 'node:http';
  import { existsSync, readFileSync } from 'node:fs';
  const read = (host, port) => new Promise((res, rej) => http.get({ host, port, path: '/' }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => res(b)); }).on('error', rej));
  const outputOf = (c) => { let o = ''; c.stdout.on('data', (d) => (o += d)); c.stderr.on('data', (d) => (o += d)); return () => o; };
  const pastaPid = (c) => Number(readFileSync(process.env.XDG_RUNTIME_DIR + '/nsbox/network/' + c.id + '/pasta.pid', 'utf8'));
`;

rtest('outbound to a server on the namespace address, published ports (random, 127.0.0.1:fixed, every address), pasta gone after remove', (t) => {
  const { out, stderr, status } = inNamespace(`${prelude}
    // the server on the namespace's own address: the container reaches it through pasta
    const server = http.createServer((req, res) => res.end('hello ' + req.socket.remoteAddress + '\\n')).listen(7777, '10.99.0.1');
    await new Promise((r) => server.once('listening', r));
    const c = await Container.run({
      rootfs: ${JSON.stringify(rootfs())},
      namespaces: { user: true },
      network: 'bridge',
      ports: [80, { container: 81, host: 18081, hostIp: '127.0.0.1' }],
      mounts: [{ type: 'tmpfs', target: '/tmp' }],
      command: ['/bin/sh', '-c', 'read a b c < /proc/self/uid_map; echo $a $b $c; ip -4 -o addr show eth0 | tr -s " " | cut -d" " -f2,4; ip route | head -1; wget -O - http://10.99.0.1:7777/ 2>/dev/null; for p in 80 81; do mkdir /tmp/$p && echo on-$p > /tmp/$p/index.html && httpd -p $p -h /tmp/$p; done; exec sleep 1000'],
    });
    const output = outputOf(c);
    const random = c.mappedPort(80);
    const fixed = c.ports(81);
    const pid = pastaPid(c);
    const comm = readFileSync('/proc/' + pid + '/comm', 'utf8').trim();
    // the servers start after the outbound line
    await c.waitFor({ port: 81 });
    await c.waitFor({ port: 80 });
    const viaLoopback = await read('127.0.0.1', random);
    const viaFixed = await read('127.0.0.1', 18081);
    c.kill('SIGKILL');
    const status = await c.wait();
    await c.remove();
    server.close();
    console.log(JSON.stringify({ random, fixed, viaLoopback, viaFixed, output: output(), status, comm, pastaAfter: existsSync('/proc/' + pid), uid: process.getuid() }));
  `);
  t.is(status, 0, stderr);
  const r = out as { random: number; fixed: unknown; viaLoopback: string; viaFixed: string; output: string; status: unknown; comm: string; pastaAfter: boolean; uid: number };
  t.is(r.uid, uid);
  const lines = r.output.trim().split('\n');
  t.is(lines[0], `0 ${uid} 1`, 'root inside is the test user outside');
  t.is(lines[1], 'eth0 10.0.2.100/24');
  t.is(lines[2], 'default via 10.0.2.2 dev eth0 ');
  t.is(lines[3], 'hello 10.99.0.1', 'the server on the namespace address was reached (pasta connects from the host side)');
  t.true(r.random > 0 && r.random !== 18081);
  t.deepEqual(r.fixed, [{ host: '127.0.0.1', port: 18081 }]);
  t.is(r.viaLoopback, 'on-80\n');
  t.is(r.viaFixed, 'on-81\n');
  t.deepEqual(r.status, { exitCode: null, signal: 'SIGKILL' });
  t.regex(r.comm, /^(pasta|passt)/);
  t.false(r.pastaAfter, 'pasta ended with remove()');
});

rtest('pasta dies with the process that started it (kill -9): nothing is left running', async (t) => {
  const { out, stderr } = inNamespace(`${prelude}
    const c = await Container.run({ rootfs: ${JSON.stringify(rootfs())}, namespaces: { user: true }, ports: [{ container: 80, host: 18082 }], network: 'bridge', command: ['/bin/sleep', '1000'], stdio: 'ignore' });
    console.log(JSON.stringify({ pasta: pastaPid(c), container: c.pid }));
    process.kill(process.pid, 'SIGKILL');
  `);
  const { pasta, container } = out as { pasta: number; container: number };
  t.true(pasta > 0 && container > 0, stderr);
  // Both are gone or going: wait for their exits on pidfds (no sleep loop).
  for (const pid of [pasta, container]) {
    const fd = pidfdOf(pid);
    if (fd !== undefined) await exitOfPidfd(fd);
  }
  t.true(gone(pasta), 'pasta is gone');
  t.true(gone(container), 'the container is gone');
});

rtest('clear errors: no pasta, a user-defined network, no user namespace', (t) => {
  const { out, stderr, status } = inNamespace(`${prelude}
    const errors = [];
    for (const opts of [{ network: 'bridge', ports: [80], namespaces: { user: true } }, { network: 'mynet', namespaces: { user: true } }, { network: 'bridge' }]) {
      try {
        const c = await Container.run({ rootfs: ${JSON.stringify(rootfs())}, command: ['/bin/true'], ...opts });
        await c.remove();
        errors.push('no error');
      } catch (e) { errors.push(e.message); }
    }
    const { Network } = await import(${JSON.stringify(lib.replace(/index\.(js|ts)$/, 'network.$1'))});
    try {
      await Network.create({ name: 'sdknet' });
      errors.push('no error');
    } catch (e) { errors.push(e.message); }
    console.log(JSON.stringify(errors));
  `, { NSBOX_PASTA: '/nonexistent/pasta' });
  t.is(status, 0, stderr);
  const [noPasta, userNet, noUserNs, networkCreate] = out as string[];
  t.regex(networkCreate!, /network create sdknet: user-defined networks need root/);
  t.regex(noPasta!, /rootless networking needs pasta \(Debian package passt\), which is not installed/);
  t.regex(userNet!, /network mynet: without root only the default network/);
  t.regex(noUserNs!, /namespaces\.user: networking without root needs the container's own user namespace/);
});
