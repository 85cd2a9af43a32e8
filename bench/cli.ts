// The CLI end to end against podman, whole commands timed from spawn to exit in one run:
// `run --rm IMAGE true`, `exec C true` (C a container started with `run -d IMAGE sleep`) and `ps`,
// on the same image (pulled from a registry this benchmark starts on 127.0.0.1). `node -e 0` is
// Node's own start-up, the floor under any Node CLI: each nsbox row is also given as milliseconds
// over it, against the goal for that command.
//
//   node --import=tsx bench/cli.ts        (root; BENCH_N=20 rounds)
//   BENCH_ONLY=node,nsbox node --import=tsx bench/cli.ts      (keys: node nsbox podman)
//   NSBOX_BEFORE=/other/checkout/bin/nsbox.js …   adds that build's rows (`before …`), same store, same rounds
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImages, pushImages, startRegistry } from '../test/fixtures/registry.ts';
import { readCgroupLayout, removeChildCgroup } from './lib/cgroup-hierarchies.ts';
import { CrunMountNamespace, mountNamespaceSteps } from './lib/crun-mount-namespace.ts';
import { hasCommand } from './lib/has-command.ts';
import { processesNaming, race } from './lib/settle.ts';
import { summarize, type Summary } from './lib/stats.ts';

const N = Number(process.env.BENCH_N ?? 20);
const only = process.env.BENCH_ONLY?.split(',');
const repo = new URL('..', import.meta.url).pathname;
const bin = join(repo, 'bin', 'nsbox.js');
const rootfs = execFileSync('bash', [join(repo, 'test/fixtures/make-rootfs.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
const root = mkdtempSync(join(tmpdir(), 'nsbox-bench-cli-'));
const env = { ...process.env, NSBOX_ROOT: root };

interface Command { file: string; args: string[] }
interface Row {
  name: string;
  cmd: Command;
  /** nsbox rows: the goal, in ms over `node -e 0`, and the podman row it is compared with. */
  goal?: number;
  peer?: string;
  samples: number[];
  /** Milliseconds its processes went on after it returned (see settle), per round. */
  after: (number | undefined)[];
  error?: string;
}

function time({ file, args }: Command): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`);
  return ms;
}

/** A difference with its sign: +3.1, -2.0. */
const signed = (ms: number): string => `${ms < 0 ? '' : '+'}${ms.toFixed(1)}`;

function check({ file, args }: Command, what: string): string {
  const r = spawnSync(file, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${what}: exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`);
  return r.stdout.trim();
}

const nsbox = (...args: string[]): Command => ({ file: process.execPath, args: [bin, ...args] });
const before = process.env.NSBOX_BEFORE;
const nsboxBefore = (...args: string[]): Command => ({ file: process.execPath, args: [before!, ...args] });
const rows: Row[] = [];
const add = (key: string, row: Omit<Row, 'samples' | 'after'>) => {
  if (!only || only.includes(key)) rows.push({ ...row, samples: [], after: [] });
};

const reg = await startRegistry();
const images = await buildImages(rootfs);
let ns: CrunMountNamespace | undefined;
let podmanFlags: string[] = [];
let podman: ((args: string[]) => Command) | undefined;
try {
  await pushImages(images, reg.host);
  const image = `${reg.host}/busybox:1`;
  check(nsbox('pull', '-q', image), 'nsbox pull');
  const nsboxC = check(nsbox('run', '-d', image, 'sleep', '3600'), 'nsbox run -d');

  if (!hasCommand('podman')) console.log('podman rows unavailable: podman is not installed (apt-get install podman)');
  else if (!only || only.includes('podman')) {
    // podman's own storage in the benchmark's directory, and rlimits it may set without
    // CAP_SYS_RESOURCE (its defaults raise nproc, which this kind of host refuses). On a hybrid
    // host its crun runs in the same private mount namespace as in start.ts (no cgroup2 mount, our
    // own cgroup over each hierarchy's root), so podman's cgroups land beneath ours.
    const steps = mountNamespaceSteps(readCgroupLayout());
    ns = steps.length ? await CrunMountNamespace.start(steps, root) : undefined;
    podmanFlags = ['--root', join(root, 'podman'), '--runroot', join(root, 'podman-run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
    const file = process.env.PODMAN ?? '/usr/bin/podman';
    podman = (args) => (ns ? ns.wrap({ file, args: [...podmanFlags, ...args] }) : { file, args: [...podmanFlags, ...args] });
    try {
      check(podman(['pull', '--tls-verify=false', image]), 'podman pull');
    } catch (e) {
      console.log(`podman rows unavailable: ${(e as Error).message}`);
      podman = undefined;
    }
  }
  const limits = ['--ulimit', `nofile=${execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()}`, '--ulimit', 'nproc=1000:1000'];
  const podmanC = podman ? check(podman(['run', '-d', ...limits, '--network', 'none', image, 'sleep', '3600']), 'podman run -d') : undefined;

  add('node', { name: 'node -e 0', cmd: { file: process.execPath, args: ['-e', '0'] } });
  add('nsbox', { name: 'nsbox run --rm', cmd: nsbox('run', '--rm', image, 'true'), goal: 40, peer: 'podman run --rm' });
  if (before) add('nsbox', { name: 'before: run --rm', cmd: nsboxBefore('run', '--rm', image, 'true'), goal: 40, peer: 'podman run --rm' });
  if (podman) add('podman', { name: 'podman run --rm', cmd: podman(['run', '--rm', ...limits, '--network', 'none', image, 'true']) });
  add('nsbox', { name: 'nsbox exec C true', cmd: nsbox('exec', nsboxC, 'true'), goal: 25, peer: 'podman exec C true' });
  if (before) add('nsbox', { name: 'before: exec C true', cmd: nsboxBefore('exec', nsboxC, 'true'), goal: 25, peer: 'podman exec C true' });
  if (podman && podmanC) add('podman', { name: 'podman exec C true', cmd: podman(['exec', podmanC, 'true']) });
  add('nsbox', { name: 'nsbox ps', cmd: nsbox('ps'), goal: 15, peer: 'podman ps' });
  if (before) add('nsbox', { name: 'before: ps', cmd: nsboxBefore('ps'), goal: 15, peer: 'podman ps' });
  if (podman) add('podman', { name: 'podman ps', cmd: podman(['ps']) });

  // The containers' supervisors stay; what else a command leaves running is waited for (race).
  const supervisors = processesNaming(root);
  await race(rows, N, (row, warmUp) => (warmUp ? time(row.cmd) : row.samples.push(time(row.cmd))), { dir: root, settled: supervisors, after: (row, ms) => row.after.push(ms) });

  const stats = new Map<string, Summary>(rows.filter((r) => !r.error && r.samples.length).map((r) => [r.name, summarize(r.samples)]));
  const floor = stats.get('node -e 0')?.median;
  console.log(`bench/cli: ${N} rounds, image ${image}`);
  console.log(`${'row'.padEnd(22)} ${'median'.padStart(9)} ${'p90'.padStart(9)}   over node   vs podman   goal`);
  const verdicts: string[] = [];
  for (const row of rows) {
    const s = stats.get(row.name);
    if (!s) {
      console.log(`${row.name.padEnd(22)} unavailable: ${row.error ?? 'no samples'}`);
      continue;
    }
    const over = floor !== undefined && row.goal !== undefined ? s.median - floor : undefined;
    const peer = row.peer ? stats.get(row.peer)?.median : undefined;
    const ratio = peer !== undefined ? `${(s.median / peer).toFixed(2)}×` : '';
    const goal = over !== undefined ? `${over <= row.goal! ? 'met' : 'not met'} (≤ +${row.goal} ms)` : '';
    if (goal) verdicts.push(`${row.name}: ${signed(over!)} ms over node, goal ≤ +${row.goal} ms: ${over! <= row.goal! ? 'met' : 'not met'}${ratio ? `; ${ratio} ${row.peer}` : ''}`);
    const overText = over !== undefined ? `${signed(over)} ms` : '';
    console.log(`${row.name.padEnd(22)} ${s.median.toFixed(1).padStart(6)} ms ${s.p90.toFixed(1).padStart(6)} ms   ${overText.padEnd(9)}   ${ratio.padEnd(9)}   ${goal}`);
  }
  for (const v of verdicts) console.log(v);
  for (const row of rows) {
    const after = row.after.filter((ms) => ms !== undefined);
    if (after.length) console.log(`${row.name}: its processes went on after it returned in ${after.length} of ${row.after.length} rounds (median ${summarize(after).median.toFixed(1)} ms; waited for, not counted)`);
  }
} finally {
  const left = spawnSync(process.execPath, [bin, 'ps', '-aq', '--no-trunc'], { env, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  if (left.length) spawnSync(process.execPath, [bin, 'rm', '-f', ...left], { env, stdio: 'ignore' });
  spawnSync(process.execPath, [bin, 'system', 'prune', '-f'], { env, stdio: 'ignore' });
  if (podman) {
    const rm = podman(['rm', '-f', '-a', '-t', '0']);
    spawnSync(rm.file, rm.args, { stdio: 'ignore' });
  }
  ns?.stop();
  // podman's cgroups (libpod_parent, beneath ours): empty once its containers are gone.
  if (podman) removeChildCgroup(readCgroupLayout(), 'libpod_parent');
  await reg.stop();
  images.cleanup();
  // podman mounts its storage directory over itself: unmount what it left under ours first.
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${root}/`));
  for (const m of mounted.sort().reverse()) spawnSync('umount', [m], { stdio: 'ignore' });
  rmSync(root, { recursive: true, force: true });
}
