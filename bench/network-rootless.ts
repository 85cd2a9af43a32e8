// Rootless networking: pasta against slirp4netns, both run by hand the way podman 4.3 runs them
// (slirp4netns --configure --mtu=65520 --disable-host-loopback with its API socket's add_hostfwd,
// podman's port_handler=slirp4netns; pasta with -t), and nsbox's SDK (which runs pasta), as an
// unprivileged user: the time until the helper is ready, what `network: 'bridge'` adds to an SDK
// run+rm over `none`, and iperf3 throughput through a published 127.0.0.1 port against loopback.
// See bench/README.md.
//
//   node --import=tsx bench/network-rootless.ts   (root; BENCH_N=10 runs per case, BENCH_SECONDS=3 per iperf3 run)
//
// It re-runs itself inside a network and mount namespace of its own (`unshare -n --mount`) with an
// address on a veth pair and a 0666 /dev/net/tun bound there, then as `nobody`: nothing of the
// host's namespace is touched. podman itself is not run: its rootless default port handler
// (rootlessport) needs podman's own user namespace set-up and images from a registry.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarize } from './lib/stats.ts';

const stage = process.env.NSBOX_BENCH_STAGE;
const self = new URL(import.meta.url).pathname;

if (!stage) {
  const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-rootless-'));
  chmodSync(work, 0o755);
  // nobody's home and runtime dir, its own (a shared /tmp/.local could be another user's)
  for (const d of ['home', 'run']) {
    mkdirSync(join(work, d), { mode: 0o700 });
    chownSync(join(work, d), 65534, 65534);
  }
  const setup = [
    `mknod -m 666 ${work}/tun c 10 200 && mount --bind ${work}/tun /dev/net/tun`,
    'ip link set lo up',
    'ip link add nsbb0 type veth peer name nsbb1 && ip addr add 10.99.0.1/24 dev nsbb0 && ip link set nsbb0 up && ip link set nsbb1 up',
    'ip route add default via 10.99.0.2 dev nsbb0',
    'exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"',
  ].join(' && ');
  const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', setup, 'bash', process.execPath, ...process.execArgv, self], {
    stdio: 'inherit',
    env: { ...process.env, NSBOX_BENCH_STAGE: 'user', HOME: join(work, 'home'), XDG_RUNTIME_DIR: join(work, 'run') },
  });
  rmSync(work, { recursive: true, force: true });
  process.exit(r.status ?? 1);
}

const runs = Number(process.env.BENCH_N ?? 10);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const ms = (ns: bigint) => Number(ns) / 1e6;
const median = (xs: number[]) => summarize(xs).median;
const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-rl-'));
const children: ChildProcess[] = [];
const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

/** A user + network namespace held by `sleep` (the container's side), its pid once it exists. */
async function holder(cmd: string[] = ['sleep', '1000']): Promise<ChildProcess> {
  const p = spawn('unshare', ['-U', '-r', '-n', '--', ...cmd], { stdio: 'ignore' });
  children.push(p);
  // its namespaces exist once /proc/PID/ns/net differs from ours: wait for unshare's exec
  await new Promise((r) => p.once('spawn', r));
  for (;;) {
    const out = spawnSync('readlink', [`/proc/${p.pid}/ns/net`, '/proc/self/ns/net'], { encoding: 'utf8' }).stdout.split('\n');
    if (out[0] && out[0] !== out[1]) return p;
    await new Promise((r) => setImmediate(r));
  }
}

/** pasta for `pid`, forwarding host port → container port; resolves once it is ready (it forks when initialised). */
async function pasta(pid: number, ports: Array<[string, number, number]> = []): Promise<{ took: number; stop: () => Promise<void> }> {
  const pidFile = join(work, `pasta-${pid}.pid`);
  const t = process.hrtime.bigint();
  const fwd = ports.length ? ports.flatMap(([ip, h, c]) => ['-t', `${ip}/${h}:${c}`]) : ['-t', 'none'];
  const r = spawnSync('pasta', ['--config-net', '--quiet', '-P', pidFile, ...fwd, '-u', 'none', '-T', 'none', '-U', 'none', String(pid)], { encoding: 'utf8' });
  const took = ms(process.hrtime.bigint() - t);
  if (r.status !== 0) throw new Error(`pasta: ${r.stderr}`);
  const helper = Number(spawnSync('cat', [pidFile], { encoding: 'utf8' }).stdout.trim());
  return { took, stop: async () => void process.kill(helper, 'SIGTERM') };
}

/** slirp4netns as podman 4.3 starts it; resolves once its ready fd says so. Ports through the API socket. */
async function slirp(pid: number, ports: Array<[string, number, number]> = []): Promise<{ took: number; stop: () => Promise<void> }> {
  const api = join(work, `slirp-${pid}.sock`);
  const t = process.hrtime.bigint();
  const p = spawn('slirp4netns', ['--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', '--ready-fd=3', '--api-socket', api, String(pid), 'tap0'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  children.push(p);
  await new Promise<void>((resolve, reject) => {
    p.stdio[3]!.once('data', () => resolve());
    p.once('exit', (code) => reject(new Error(`slirp4netns exited ${code}`)));
  });
  for (const [ip, h, c] of ports) {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(api);
      let b = '';
      s.on('data', (d) => (b += d));
      s.on('end', () => resolve(b));
      s.on('error', reject);
      s.end(JSON.stringify({ execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: ip, host_port: h, guest_port: c } }));
    });
    if (!reply.includes('return')) throw new Error(`slirp4netns add_hostfwd: ${reply}`);
  }
  const took = ms(process.hrtime.bigint() - t);
  return {
    took,
    stop: async () => {
      p.kill('SIGTERM');
      await exited(p);
    },
  };
}

/** iperf3 client → 127.0.0.1:port; Gbit/s received. */
function iperf(port: number): number {
  const r = spawnSync('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iperf3 -c :${port}: ${r.stdout.slice(0, 300)} ${r.stderr}`);
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

try {
  // 1. Ready time of the helper alone, on a held namespace.
  const ready: Record<'pasta' | 'slirp4netns', number[]> = { pasta: [], slirp4netns: [] };
  for (let i = 0; i < runs; i++) {
    for (const [name, start] of [['pasta', pasta], ['slirp4netns', slirp]] as const) {
      const h = await holder();
      const s = await start(h.pid!, [['127.0.0.1', 18000 + i, 80]]);
      ready[name].push(s.took);
      await s.stop();
      h.kill('SIGKILL');
      await exited(h);
    }
  }
  console.log(`helper ready, one published port (${runs} runs, medians): pasta ${median(ready.pasta).toFixed(1)} ms, slirp4netns ${median(ready.slirp4netns).toFixed(1)} ms (ready fd + one API add_hostfwd); pasta/slirp4netns = ${(median(ready.pasta) / median(ready.slirp4netns)).toFixed(2)}`);

  // 2. What network 'bridge' (pasta) adds to an SDK run+rm of a host sandbox's `true`.
  const { Container } = await import('../lib/container.ts');
  const runRoot = join(work, 'run');
  const timeRun = async (network: string) => {
    const t = process.hrtime.bigint();
    const c = await Container.run({ namespaces: { user: true }, network, command: ['true'], stdio: 'ignore', runRoot });
    await c.wait();
    await c.remove();
    return ms(process.hrtime.bigint() - t);
  };
  await timeRun('none');
  await timeRun('bridge');
  const none: number[] = [];
  const bridge: number[] = [];
  for (let i = 0; i < runs; i++) {
    none.push(await timeRun('none'));
    bridge.push(await timeRun('bridge'));
  }
  console.log(`nsbox SDK run+rm rootless, host sandbox true (${runs} runs, medians): none ${median(none).toFixed(1)} ms, bridge (pasta) ${median(bridge).toFixed(1)} ms, added ${(median(bridge) - median(none)).toFixed(1)} ms`);

  // 3. Throughput through a published 127.0.0.1 port, against loopback.
  const lo = spawn('iperf3', ['-s', '-1', '-p', '15301', '-B', '127.0.0.1'], { stdio: 'ignore' });
  children.push(lo);
  await new Promise((r) => setTimeout(r, 300));
  const loopback = iperf(15301);
  await exited(lo);

  const viaHelper = async (start: typeof pasta, port: number) => {
    const h = await holder(['iperf3', '-s', '-p', '5201']);
    const s = await start(h.pid!, [['127.0.0.1', port, 5201]]);
    await new Promise((r) => setTimeout(r, 300));
    const gbit = iperf(port);
    await s.stop();
    h.kill('SIGKILL');
    await exited(h);
    return gbit;
  };
  const pastaGbit = await viaHelper(pasta, 15302);
  const slirpGbit = await viaHelper(slirp, 15303);
  const sdk = await Container.run({ namespaces: { user: true }, network: 'bridge', ports: [{ container: 5201, host: 15304, hostIp: '127.0.0.1' }], command: ['iperf3', '-s', '-p', '5201'], stdio: 'ignore', runRoot });
  await sdk.waitFor({ port: 5201 });
  const nsboxGbit = iperf(15304);
  sdk.kill('SIGKILL');
  await sdk.wait();
  await sdk.remove();
  console.log(`published 127.0.0.1 port, iperf3 ${seconds} s: loopback ${loopback.toFixed(2)} Gbit/s, pasta by hand ${pastaGbit.toFixed(2)}, slirp4netns by hand ${slirpGbit.toFixed(2)}, nsbox SDK (pasta) ${nsboxGbit.toFixed(2)}`);
  console.log(`ratios: pasta/loopback ${(pastaGbit / loopback).toFixed(2)}, slirp4netns/loopback ${(slirpGbit / loopback).toFixed(2)}, nsbox/loopback ${(nsboxGbit / loopback).toFixed(2)}, nsbox/slirp4netns ${(nsboxGbit / slirpGbit).toFixed(2)}, pasta/slirp4netns ${(pastaGbit / slirpGbit).toFixed(2)}`);
} finally {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
