// Bridge networking: what `network: 'bridge'` adds to a container's start and removal over
// `network: 'none'` (SDK, busybox `true`), beside podman's `--network bridge` over `--network none`
// (netavark), and iperf3 throughput host → container over the bridge and through a published
// 127.0.0.1 port, each against loopback. See bench/README.md.
//
//   node --import=tsx bench/network.ts      (root; BENCH_N=30 runs per case, BENCH_SECONDS=3 per iperf3 run)
//
// It re-runs itself inside a network and mount namespace of its own (`unshare -n --mount`): the
// bridges, rules and sysctls it makes never touch the host's namespace.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarize } from './lib/stats.ts';

const repo = new URL('..', import.meta.url).pathname;

if (process.env.NSBOX_BENCH_INSIDE !== '1') {
  const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, ...process.execArgv, new URL(import.meta.url).pathname], {
    stdio: 'inherit',
    env: { ...process.env, NSBOX_BENCH_INSIDE: '1' },
  });
  process.exit(r.status ?? 1);
}

const { Container } = await import('../lib/container.ts');
const { stopDns } = await import('../lib/network/dns.ts');
const runs = Number(process.env.BENCH_N ?? 30);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const rootfs = execFileSync('bash', [join(repo, 'test/fixtures/make-rootfs.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-net-'));
const base = { rootfs, imageRoot: join(work, 'root'), runRoot: join(work, 'run') };
const ms = (ns: bigint) => Number(ns) / 1e6;

async function timeRun(network: string): Promise<number> {
  const t = process.hrtime.bigint();
  const c = await Container.run({ ...base, network, command: ['true'], stdio: 'ignore' });
  await c.wait();
  await c.remove();
  return ms(process.hrtime.bigint() - t);
}

function median(xs: number[]): number {
  return summarize(xs).median;
}

try {
  // Warm-up: the bridge, the nft table and the default network record are made once.
  await timeRun('bridge');
  await timeRun('none');
  const none: number[] = [];
  const bridge: number[] = [];
  for (let i = 0; i < runs; i++) {
    none.push(await timeRun('none'));
    bridge.push(await timeRun('bridge'));
  }
  console.log(`nsbox run+rm, busybox true (${runs} runs each, medians): none ${median(none).toFixed(1)} ms, bridge ${median(bridge).toFixed(1)} ms, added ${(median(bridge) - median(none)).toFixed(1)} ms`);

  if (existsSync('/usr/bin/podman')) {
    const podman = (network: string) => {
      const t = process.hrtime.bigint();
      const r = spawnSync('podman', ['--root', join(work, 'podman'), '--runroot', join(work, 'podman-run'), 'run', '--rm', '--network', network, '--rootfs', rootfs, 'true'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`podman --network ${network}: ${r.stderr}`);
      return ms(process.hrtime.bigint() - t);
    };
    try {
      podman('bridge');
      podman('none');
      const pn: number[] = [];
      const pb: number[] = [];
      for (let i = 0; i < Math.min(runs, 15); i++) {
        pn.push(podman('none'));
        pb.push(podman('bridge'));
      }
      console.log(`podman run --rm --rootfs, true (${pn.length} runs each, medians): none ${median(pn).toFixed(1)} ms, bridge ${median(pb).toFixed(1)} ms, added ${(median(pb) - median(pn)).toFixed(1)} ms`);
    } catch (e) {
      console.log(`podman: not measured (${(e as Error).message.split('\n')[0]})`);
    }
  }

  if (existsSync('/usr/bin/iperf3')) {
    const iperf = (host: string, port: number): number => {
      const r = spawnSync('iperf3', ['-c', host, '-p', String(port), '-t', String(seconds), '-J'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`iperf3 -c ${host}:${port}: ${r.stdout.slice(0, 300)} ${r.stderr}`);
      return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
    };
    const server = spawn('iperf3', ['-s', '-p', '15201', '-B', '127.0.0.1'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300)); // not a lifecycle path: a benchmark's peer starting
    const loopback = iperf('127.0.0.1', 15201);
    server.kill();
    // iperf3 from the host's /usr in a host sandbox (no rootfs), on the bridge, port 5201 published on
    // 127.0.0.1; then the same on a network at docker's MTU (1500) beside nsbox's default (65520).
    const measure = async (network: string) => {
      const c = await Container.run({ ...base, rootfs: undefined, network, ports: [{ container: 5201, hostIp: '127.0.0.1' }], command: ['iperf3', '-s', '-p', '5201'], stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300)); // not a lifecycle path: a benchmark's peer starting
      const bridgeBw = iperf(c.ipAddress()!, 5201);
      const published = iperf('127.0.0.1', c.port(5201).port);
      await c.remove();
      return { bridgeBw, published };
    };
    const { Network } = await import('../lib/network.ts');
    await Network.create({ name: 'mtu1500', options: { 'com.docker.network.driver.mtu': '1500' } }, { root: base.imageRoot });
    const d = await measure('bridge');
    const m = await measure('mtu1500');
    const loopback2 = (() => {
      const s2 = spawn('iperf3', ['-s', '-p', '15202', '-B', '127.0.0.1'], { stdio: 'ignore' });
      spawnSync('sleep', ['0.3']);
      const v = iperf('127.0.0.1', 15202);
      s2.kill();
      return v;
    })();
    const lo = (loopback + loopback2) / 2;
    const x = (v: number) => `${v.toFixed(1)} (${(v / lo).toFixed(2)}× loopback)`;
    console.log(`iperf3 ${seconds} s, Gbit/s: loopback ${loopback.toFixed(1)} before, ${loopback2.toFixed(1)} after (ratios against their mean ${lo.toFixed(1)})`);
    console.log(`  default MTU 65520: host→container over the bridge ${x(d.bridgeBw)}, through a published 127.0.0.1 port ${x(d.published)}`);
    console.log(`  MTU 1500 (docker's): host→container over the bridge ${x(m.bridgeBw)}, through a published 127.0.0.1 port ${x(m.published)}`);
  }
} finally {
  stopDns(base.runRoot);
  rmSync(work, { recursive: true, force: true });
}
