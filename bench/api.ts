// The Docker Engine API end to end: the real `docker` CLI against `nsbox serve` (on a temp socket,
// over its own NSBOX_ROOT) beside podman's own CLI, on the same image (pulled from a registry this
// benchmark starts on 127.0.0.1), whole commands timed from spawn to exit, in one run:
//   docker run --rm IMAGE true          vs  podman run --rm IMAGE true
//   docker exec C true                  vs  podman exec C true          (C runs sleep)
//   docker run -d IMAGE sleep; rm -f    vs  the same with podman        (both commands timed)
// One warm-up of each row, then rounds in which every row runs once (as bench/cli.ts), so that drift
// on this shared machine hits both engines alike; what a command left running (podman's cleanup
// processes) is waited for before the next row, not counted. Then where the server's time went, per
// route, from its --debug request log.
//
//   node --import=tsx bench/api.ts        (root; BENCH_N=20 rounds; BENCH_PODMAN=0: nsbox only;
//                                          BENCH_SERVE_NODE_ARGS: node flags for nsbox serve;
//                                          BENCH_SERVE_LOG: keep the server's log in this file)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImages, pushImages, startRegistry } from '../test/fixtures/registry.ts';
import { readCgroupLayout, removeChildCgroup } from './lib/cgroup-hierarchies.ts';
import { CrunMountNamespace, mountNamespaceSteps } from './lib/crun-mount-namespace.ts';
import { hasCommand } from './lib/has-command.ts';
import { processesNaming, race } from './lib/settle.ts';
import { summarize } from './lib/stats.ts';

const N = Number(process.env.BENCH_N ?? 20);
const repo = new URL('..', import.meta.url).pathname;
const bin = join(repo, 'bin', 'nsbox.js');
const rootfs = execFileSync('bash', [join(repo, 'test/fixtures/make-rootfs.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-api-'));
const root = join(dir, 'root');
const socket = join(dir, 'nsbox.sock');
const logFile = join(dir, 'serve.log');
const dockerEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_'))),
  DOCKER_CONFIG: join(dir, 'docker-config'),
};
const row = (name: string) => name.padEnd(44);

type Command = { file: string; args: string[]; env?: NodeJS.ProcessEnv };

function run(c: Command): { ms: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c.file, c.args, { env: c.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${c.file} ${c.args.join(' ')}: exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').pop()}`);
  return { ms, stdout: r.stdout };
}

/** One engine's command line (`cli(args)`), the flags its `run` gets, and those of its `rm -f`. */
interface Engine {
  who: string;
  cli: (args: string[]) => Command;
  extra: string[];
  rmExtra: string[];
  /** Its server's CPU time so far, in ms (nsbox serve's and its reaped children's). */
  cpu?: () => number;
  /** The container its exec row runs in (started before the rounds). */
  container?: string;
}

interface Row {
  name: string;
  sample: () => number;
  samples: number[];
  /** For nsbox's rows: the server's CPU time so far (ms), read around each sample. */
  cpu?: () => number;
  cpuMs: number;
  error?: string;
}

/** The three scenarios' rows for one engine, on `image`. */
function rowsOf(e: Engine, image: string): Row[] {
  const make = (name: string, sample: () => number): Row => ({ name: `${e.who} ${name}`, sample, samples: [], cpuMs: 0, ...(e.cpu ? { cpu: e.cpu } : {}) });
  return [
    make('run --rm IMAGE true', () => run(e.cli(['run', '--rm', ...e.extra, image, 'true'])).ms),
    make('exec C true', () => {
      if (!e.container) throw new Error('its container did not start');
      return run(e.cli(['exec', e.container, 'true'])).ms;
    }),
    make('run -d IMAGE sleep; rm -f', () => {
      const started = run(e.cli(['run', '-d', ...e.extra, image, 'sleep', '1000']));
      return started.ms + run(e.cli(['rm', '-f', ...e.rmExtra, started.stdout.trim()])).ms;
    }),
  ];
}

/** A sample of the row (`race`), with the server's CPU around it. */
function sampleRow(r: Row, warmUp: boolean): void {
  if (warmUp) return void r.sample();
  const cpu0 = r.cpu?.() ?? 0;
  r.samples.push(r.sample());
  r.cpuMs += (r.cpu?.() ?? 0) - cpu0;
}

/** The row's median (printed with its p90), or undefined when it could not run. */
function report(r: Row | undefined): number | undefined {
  if (!r) return undefined;
  if (r.error || !r.samples.length) {
    console.log(`${row(r.name)} unavailable: ${r.error ?? 'no samples'}`);
    return undefined;
  }
  const s = summarize(r.samples);
  const cpu = r.cpu ? `   server+shims CPU ${(r.cpuMs / r.samples.length).toFixed(1)} ms` : '';
  console.log(`${row(r.name)} median ${s.median.toFixed(1)} ms   p90 ${s.p90.toFixed(1)} ms${cpu}`);
  return s.median;
}

/**
 * User + system CPU of process `pid` (all its threads) and of the children it reaped (the shims
 * and the exec'd processes), in ms, from /proc/PID/stat's clock ticks.
 */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / ticksPerSecond;
}
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function ping(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, method: 'GET', path: '/_ping' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Median server-side milliseconds per route, from `nsbox serve --debug`'s request log. */
function routeTimes(): string[] {
  const byRoute = new Map<string, number[]>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { msg?: string; method?: string; route?: string; ms?: number };
    if (e.msg !== 'request' || e.ms === undefined) continue;
    const key = `${e.method} ${e.route}`;
    byRoute.set(key, [...(byRoute.get(key) ?? []), e.ms]);
  }
  return [...byRoute].map(([k, v]) => `  ${k.padEnd(42)} n=${String(v.length).padEnd(4)} median ${summarize(v).median.toFixed(1)} ms`);
}

const ratio = (a: number | undefined, b: number | undefined, goal: number, what: string) => {
  if (a !== undefined && b !== undefined) console.log(`${what.padEnd(44)} = ${(a / b).toFixed(2)} (goal: <= ${goal})`);
};

const reg = await startRegistry();
const images = await buildImages(rootfs);
const fd = openSync(logFile, 'a');
// BENCH_SERVE_NODE_ARGS: node flags for the server alone (e.g. "--cpu-prof --cpu-prof-dir=DIR").
const serveNodeArgs = (process.env.BENCH_SERVE_NODE_ARGS ?? '').split(' ').filter(Boolean);
const serve = spawn(process.execPath, [...serveNodeArgs, bin, 'serve', '--socket', socket, '--debug'], { stdio: ['ignore', fd, fd], env: { ...process.env, NSBOX_ROOT: root } });
closeSync(fd);
let ns: CrunMountNamespace | undefined;
let podman: ((args: string[]) => Command) | undefined;
try {
  if (!hasCommand('docker')) throw new Error('no docker CLI installed');
  await pushImages(images, reg.host);
  const image = `${reg.host}/busybox:1`;
  let up = false;
  for (let i = 0; i < 100 && !up && serve.exitCode === null; i++) {
    up = await ping();
    if (!up) await new Promise((r) => setTimeout(r, 100));
  }
  if (!up) throw new Error(`nsbox serve did not answer: ${readFileSync(logFile, 'utf8')}`);
  const docker = (args: string[]): Command => ({ file: 'docker', args: ['-H', `unix://${socket}`, ...args], env: dockerEnv });
  run(docker(['pull', '-q', image]));
  const engines: Engine[] = [{ who: 'docker (nsbox serve)', cli: docker, extra: [], rmExtra: [], cpu: () => cpuMs(serve.pid!) }];
  if (process.env.BENCH_PODMAN === '0') console.log(`${row('podman')} skipped (BENCH_PODMAN=0)`);
  else if (!hasCommand('podman')) console.log(`${row('podman')} unavailable: podman is not installed (apt-get install podman)`);
  else {
    // As bench/cli.ts: podman's storage in our directory, rlimits it may set, and on a hybrid host
    // a private mount namespace where its crun finds no cgroup2 mount and our own cgroups.
    const steps = mountNamespaceSteps(readCgroupLayout());
    ns = steps.length ? await CrunMountNamespace.start(steps, dir) : undefined;
    const p = ['--root', join(dir, 'podman'), '--runroot', join(dir, 'podman-run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
    podman = (args: string[]): Command => {
      const c = { file: process.env.PODMAN ?? '/usr/bin/podman', args: [...p, ...args] };
      return ns ? ns.wrap(c) : c;
    };
    const pulled = spawnSync(podman(['pull', '--tls-verify=false', image]).file, podman(['pull', '--tls-verify=false', image]).args, { stdio: 'ignore' });
    const limits = ['--ulimit', `nofile=${execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()}`, '--ulimit', 'nproc=1000:1000', '--network', 'none'];
    // docker's rm -f is a SIGKILL at once; podman's waits out a stop timeout unless -t 0.
    if (pulled.status === 0) engines.push({ who: 'podman', cli: podman, extra: limits, rmExtra: ['-t', '0'] });
    else console.log(`${row('podman')} unavailable: podman pull failed`);
  }
  for (const e of engines) {
    try {
      e.container = run(e.cli(['run', '-d', ...e.extra, image, 'sleep', '1000'])).stdout.trim();
    } catch (err) {
      console.log(`${row(`${e.who} exec C true`)} no container: ${(err as Error).message}`);
    }
  }
  // The server, its shims and the exec rows' containers stay; anything else is a command's leftover.
  const settled = processesNaming(dir);
  const [nsbox, peer] = engines.map((e) => rowsOf(e, image));
  // Row by row as the scenarios go: nsbox's then podman's, each round.
  await race(nsbox!.flatMap((r, i) => (peer ? [r, peer[i]!] : [r])), N, sampleRow, { dir, settled });
  console.log(`bench/api: ${N} rounds, docker CLI against nsbox serve, and podman, on ${image}`);
  const [runRm, exec, detached] = nsbox!.map(report);
  const [pRunRm, pExec, pDetached] = peer ? peer.map(report) : [];
  ratio(runRm, pRunRm, 0.35, 'run --rm: nsbox serve / podman');
  ratio(exec, pExec, 0.5, 'exec: nsbox serve / podman');
  ratio(detached, pDetached, 0.35, 'run -d + rm -f: nsbox serve / podman');
  console.log('nsbox serve, time per request (its --debug log, all runs above):');
  for (const l of routeTimes()) console.log(l);
} finally {
  const left = spawnSync('docker', ['-H', `unix://${socket}`, 'ps', '-aq'], { env: dockerEnv, encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
  if (left.length) spawnSync('docker', ['-H', `unix://${socket}`, 'rm', '-f', ...left], { env: dockerEnv, stdio: 'ignore' });
  spawnSync('docker', ['-H', `unix://${socket}`, 'system', 'prune', '-f'], { env: dockerEnv, stdio: 'ignore' });
  if (podman) {
    const rm = podman(['rm', '-f', '-a', '-t', '0']);
    spawnSync(rm.file, rm.args, { stdio: 'ignore' });
    ns?.stop();
    removeChildCgroup(readCgroupLayout(), 'libpod_parent');
  }
  serve.kill('SIGTERM');
  await new Promise((r) => (serve.exitCode !== null ? r(null) : serve.once('exit', r)));
  if (process.env.BENCH_SERVE_LOG) copyFileSync(logFile, process.env.BENCH_SERVE_LOG);
  await reg.stop();
  images.cleanup();
  // podman mounts its storage directory over itself: unmount what it left under ours first.
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));
  for (const m of mounted.sort().reverse()) spawnSync('umount', [m], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
