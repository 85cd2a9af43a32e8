// A service for a test, to ready: testcontainers-node's
//   new GenericContainer(busybox httpd).withExposedPorts(80).start()
// (create, start, inspect, wait for the mapped port) through `nsbox serve` and through podman's
// Docker-compatible API (`podman system service`), one run, same image (the busybox rootfs imported
// into each), Ryuk off for both; and nsbox's SDK doing the same in-process:
//   Container.run({ image, network: 'bridge', ports: [80], command: httpd }) + the first TCP connect.
// Everything runs in a network and mount namespace of the benchmark's own (`unshare -n --mount`,
// re-executed at start), so both engines' bridges and port rules are its own.
//
//   node --import=tsx bench/services.ts    (root; BENCH_N=10 starts each; BENCH_PODMAN=0: nsbox only)
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCgroupLayout, removeChildCgroup } from './lib/cgroup-hierarchies.ts';
import { CrunMountNamespace, mountNamespaceSteps } from './lib/crun-mount-namespace.ts';
import { hasCommand } from './lib/has-command.ts';
import { summarize } from './lib/stats.ts';

const N = Number(process.env.BENCH_N ?? 10);
const self = fileURLToPath(import.meta.url);
const repo = fileURLToPath(new URL('..', import.meta.url));
const bin = join(repo, 'bin', 'nsbox.js');
const IMAGE = 'localhost/bench-httpd:1';
const HTTPD = ['httpd', '-f', '-p', '80', '-h', '/etc'];
const row = (name: string) => name.padEnd(52);

/** `client`: the testcontainers side, in a process of its own per engine (testcontainers keeps one client per process). */
async function client(): Promise<void> {
  const { GenericContainer } = await import('testcontainers');
  const samples: number[] = [];
  for (let i = 0; i <= N; i++) {
    const t0 = performance.now();
    const c = await new GenericContainer(IMAGE).withExposedPorts(80).start();
    const ms = performance.now() - t0;
    // The first is the warm-up (the client's engine discovery, the image lookup's caches).
    if (i > 0) samples.push(ms);
    await c.stop();
  }
  process.stdout.write(`${JSON.stringify(samples)}\n`);
  process.exit(0);
}

/** The first successful TCP connect to host:port (the readiness testcontainers' default wait checks from the host). */
function connectOnce(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function sdk(root: string): Promise<number[]> {
  const { Container } = await import('../lib/index.ts');
  const samples: number[] = [];
  for (let i = 0; i <= N; i++) {
    const t0 = performance.now();
    const c = await Container.run({ image: IMAGE, imageRoot: root, pull: 'never', command: HTTPD, network: 'bridge', ports: [80] });
    const port = c.port(80).port;
    while (!(await connectOnce('127.0.0.1', port)));
    const ms = performance.now() - t0;
    if (i > 0) samples.push(ms);
    await c.remove();
  }
  return samples;
}

function testcontainers(socketUri: string): number[] {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_') && !k.startsWith('TESTCONTAINERS_'))), DOCKER_HOST: socketUri, TESTCONTAINERS_RYUK_DISABLED: 'true' };
  const r = spawnSync(process.execPath, ['--import=tsx', self, 'client'], { encoding: 'utf8', env, cwd: repo, timeout: 600_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('[')) throw new Error(`testcontainers against ${socketUri}: exit ${r.status}: ${r.stderr.trim().split('\n').slice(-8).join('\n')}`);
  return JSON.parse(line) as number[];
}

function report(name: string, samples: number[] | undefined, why?: string): number | undefined {
  if (!samples) {
    console.log(`${row(name)} unavailable: ${why}`);
    return undefined;
  }
  const s = summarize(samples);
  console.log(`${row(name)} median ${s.median.toFixed(1)} ms   p90 ${s.p90.toFixed(1)} ms   (n=${samples.length})`);
  return s.median;
}

async function waitForSocket(path: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    if (existsSync(path) && (await new Promise<boolean>((r) => net.connect(path).once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false))))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${path}`);
}

async function inNamespace(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-services-'));
  const root = join(dir, 'root');
  // netns files, DNS configs: under our directory, for the server and the SDK alike.
  process.env.NSBOX_RUN_ROOT = join(dir, 'run');
  const nsboxSock = join(dir, 'nsbox.sock');
  // testcontainers looks for "podman.sock" in DOCKER_HOST to pick podman's network as the host's gateway.
  const podmanSock = join(dir, 'podman.sock');
  const children: ChildProcess[] = [];
  let ns: CrunMountNamespace | undefined;
  const rootfs = execFileSync('bash', [join(repo, 'test/fixtures/make-rootfs.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
  const tar = join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tar, '.']);
  const changes = ['EXPOSE 80', `CMD ${JSON.stringify(HTTPD)}`];
  try {
    const env = { ...process.env, NSBOX_ROOT: root };
    execFileSync(process.execPath, [bin, 'import', ...changes.flatMap((c) => ['-c', c]), tar, IMAGE], { env, stdio: 'ignore' });
    const serve = spawn(process.execPath, [bin, 'serve', '--socket', nsboxSock], { env, stdio: 'ignore' });
    children.push(serve);
    await waitForSocket(nsboxSock, serve, 'nsbox serve');

    console.log(`bench/services: GenericContainer(busybox httpd).withExposedPorts(80).start(), ${N} starts each after one warm-up, Ryuk off`);
    const nsbox = report('testcontainers -> nsbox serve', testcontainers(`unix://${nsboxSock}`));

    let podman: number | undefined;
    if (process.env.BENCH_PODMAN === '0') console.log(`${row('testcontainers -> podman system service')} skipped (BENCH_PODMAN=0)`);
    else if (!hasCommand('podman')) console.log(`${row('testcontainers -> podman system service')} unavailable: podman is not installed`);
    else {
      // As bench/cli.ts: its storage in our directory, no cgroup2 mount and our own cgroups where
      // its crun looks (a hybrid host), and rlimits it may set without CAP_SYS_RESOURCE (crun's
      // setrlimit of podman's default nofile fails here otherwise).
      const steps = mountNamespaceSteps(readCgroupLayout());
      ns = steps.length ? await CrunMountNamespace.start(steps, dir) : undefined;
      const conf = join(dir, 'containers.conf');
      const hardNofile = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
      writeFileSync(conf, `[containers]\ndefault_ulimits = ["nofile=${hardNofile}:${hardNofile}", "nproc=1000:1000"]\n`);
      const penv = { ...process.env, CONTAINERS_CONF: conf };
      const p = ['--root', join(dir, 'podman'), '--runroot', join(dir, 'podman-run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
      const cmd = (args: string[]) => (ns ? ns.wrap({ file: '/usr/bin/podman', args: [...p, ...args] }) : { file: '/usr/bin/podman', args: [...p, ...args] });
      const imp = cmd(['import', ...changes.flatMap((c) => ['--change', c]), tar, IMAGE]);
      execFileSync(imp.file, imp.args, { env: penv, stdio: 'ignore' });
      const svc = cmd(['system', 'service', '--time', '0', `unix://${podmanSock}`]);
      // Its log is noise here: testcontainers' internal port check tries /bin/bash first (busybox has sh).
      const service = spawn(svc.file, svc.args, { env: penv, stdio: 'ignore' });
      children.push(service);
      await waitForSocket(podmanSock, service, 'podman system service');
      try {
        podman = report('testcontainers -> podman system service', testcontainers(`unix://${podmanSock}`));
      } catch (e) {
        report('testcontainers -> podman system service', undefined, (e as Error).message);
      }
    }
    if (nsbox !== undefined && podman !== undefined) console.log(`${'nsbox serve / podman'.padEnd(52)} = ${(nsbox / podman).toFixed(2)} (goal: <= 0.5)`);

    const inProcess = report('SDK Container.run(bridge, ports [80]) + connect', await sdk(root));
    if (inProcess !== undefined) console.log(`${'SDK to ready'.padEnd(52)} = ${inProcess.toFixed(1)} ms (goal: <= 50 ms)`);
  } finally {
    for (const c of children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        await new Promise((r) => c.once('exit', r));
      }
    }
    ns?.stop();
    removeChildCgroup(readCgroupLayout(), 'libpod_parent');
    // nsbox's containers (none should be left: each start was stopped); the namespace takes its
    // netns files, bridges and podman's storage mounts with it.
    spawnSync(process.execPath, [bin, 'system', 'prune', '-f'], { env: { ...process.env, NSBOX_ROOT: root }, stdio: 'ignore' });
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));
    for (const m of mounted.sort().reverse()) spawnSync('umount', [m], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'client') await client();
else if (process.env.BENCH_IN_NETNS === '1') {
  await inNamespace();
  process.exit(0);
} else {
  const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', self], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_IN_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}
