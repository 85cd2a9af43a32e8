// The CLI end to end: `nsbox run --rm IMAGE true` against `podman run --rm IMAGE true` on the same
// image (pulled from a registry this benchmark starts on 127.0.0.1), whole commands timed from
// spawn to exit, in one run. `node -e 0` is Node's own start-up, the floor under any Node CLI.
//
//   node --import=tsx bench/cli.ts        (root; BENCH_N=20 runs each)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImages, pushImages, startRegistry } from '../test/fixtures/registry.ts';
import { readCgroupLayout, removeChildCgroup } from './lib/cgroup-hierarchies.ts';
import { CrunMountNamespace, mountNamespaceSteps } from './lib/crun-mount-namespace.ts';
import { hasCommand } from './lib/has-command.ts';
import { summarize } from './lib/stats.ts';

const N = Number(process.env.BENCH_N ?? 20);
const repo = new URL('..', import.meta.url).pathname;
const bin = join(repo, 'bin', 'nsbox.js');
const rootfs = execFileSync('bash', [join(repo, 'test/fixtures/make-rootfs.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
const root = mkdtempSync(join(tmpdir(), 'nsbox-bench-cli-'));
const env = { ...process.env, NSBOX_ROOT: root };

function time(file: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`);
  return ms;
}

function measure(name: string, file: string, args: string[]): number | undefined {
  try {
    time(file, args); // warm caches
    const samples = Array.from({ length: N }, () => time(file, args));
    const s = summarize(samples);
    console.log(`${name.padEnd(40)} median ${s.median.toFixed(1)} ms   p90 ${s.p90.toFixed(1)} ms`);
    return s.median;
  } catch (e) {
    console.log(`${name.padEnd(40)} unavailable: ${(e as Error).message}`);
    return undefined;
  }
}

const reg = await startRegistry();
const images = await buildImages(rootfs);
try {
  await pushImages(images, reg.host);
  const image = `${reg.host}/busybox:1`;
  execFileSync(process.execPath, [bin, 'pull', '-q', image], { env, stdio: 'ignore' });
  console.log(`bench/cli: ${N} runs each of \`run --rm ${image} true\``);
  const node = measure('node -e 0 (Node start-up)', process.execPath, ['-e', '0']);
  const nsbox = measure('nsbox run --rm', process.execPath, [bin, 'run', '--rm', image, 'true']);
  let podman: number | undefined;
  if (!hasCommand('podman')) console.log(`${'podman run --rm'.padEnd(40)} unavailable: podman is not installed (apt-get install podman)`);
  else {
    // podman's own storage in the benchmark's directory, and rlimits it may set without
    // CAP_SYS_RESOURCE (its defaults raise nproc, which this kind of host refuses). On a hybrid
    // host its crun runs in the same private mount namespace as in start.ts (no cgroup2 mount, our
    // own cgroup over each hierarchy's root), so podman's cgroups land beneath ours.
    const steps = mountNamespaceSteps(readCgroupLayout());
    const ns = steps.length ? await CrunMountNamespace.start(steps, root) : undefined;
    const wrap = (file: string, args: string[]) => (ns ? ns.wrap({ file: process.env.PODMAN ?? '/usr/bin/podman', args }) : { file, args });
    try {
      const p = ['--root', join(root, 'podman'), '--runroot', join(root, 'podman-run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
      const pull = wrap('podman', [...p, 'pull', '--tls-verify=false', image]);
      const pulled = spawnSync(pull.file, pull.args, { stdio: 'ignore' });
      const limits = ['--ulimit', `nofile=${execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()}`, '--ulimit', 'nproc=1000:1000'];
      const run = wrap('podman', [...p, 'run', '--rm', ...limits, '--network', 'none', image, 'true']);
      podman = pulled.status === 0 ? measure('podman run --rm', run.file, run.args) : undefined;
      if (pulled.status !== 0) console.log(`${'podman run --rm'.padEnd(40)} unavailable: podman pull failed`);
    } finally {
      ns?.stop();
      // podman's cgroups (libpod_parent, beneath ours): empty once its containers are gone.
      removeChildCgroup(readCgroupLayout(), 'libpod_parent');
    }
  }
  if (nsbox !== undefined && podman !== undefined) console.log(`nsbox/podman = ${(nsbox / podman).toFixed(2)} (goal: <= 0.5)`);
  if (nsbox !== undefined && node !== undefined) console.log(`nsbox - node start-up = ${(nsbox - node).toFixed(1)} ms`);
} finally {
  spawnSync(process.execPath, [bin, 'system', 'prune', '-f'], { env, stdio: 'ignore' });
  await reg.stop();
  images.cleanup();
  // podman mounts its storage directory over itself: unmount what it left under ours first.
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${root}/`));
  for (const m of mounted.sort().reverse()) spawnSync('umount', [m], { stdio: 'ignore' });
  rmSync(root, { recursive: true, force: true });
}
