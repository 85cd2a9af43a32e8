// The OCI runtime CLI, side by side: `create && start && delete -f` of /bin/true on the busybox
// rootfs (the youki README's benchmark) with nsbox-runc, crun and runc, each with its own bundle
// and state root, a relative cgroupsPath (beneath our own cgroup). One run: a few rounds each,
// medians, and each runtime's ratio to crun's, after one uncounted round each (nsbox-runc's first
// create of a config starts Node to compile it; the later ones run from its plan cache). Then `ctr run --rm` of /bin/true on the same rootfs
// through the bench's own containerd (its own root, state and socket; CRI off; stopped at the end)
// with `--runc-binary` set to each runtime (crun through a two-line wrapper that enters its mount
// namespace, as above).
//
// The runtimes take turns: each round runs every runtime once, in an order rotated by one each
// round, so a drift of the host's load over the run (other work, a kernel's deferred teardown of
// the previous container's namespaces) reaches every runtime alike and none always follows the same one.
//
//   node --import=tsx bench/runtime.ts        (as root; ROUNDS=N, default 5)
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCgroupLayout, removeChildCgroup } from './lib/cgroup-hierarchies.ts';
import { CrunMountNamespace, mountNamespaceSteps } from './lib/crun-mount-namespace.ts';
import { hasCommand } from './lib/has-command.ts';
import { makeSpec, writeBundle } from './lib/oci-bundle.ts';
import { timeSpawn, type Command } from './lib/spawn-timer.ts';
import { summarize } from './lib/stats.ts';

const rounds = Number(process.env.ROUNDS ?? 5);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loadAtStart = loadavg();
const rootfs = execFileSync('bash', [fileURLToPath(new URL('../test/fixtures/make-rootfs.sh', import.meta.url))], { encoding: 'utf8' }).trim().split('\n').pop()!;
const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-runtime-'));
const layout = readCgroupLayout();
// The entry containerd runs: the C++ per-call path, which starts Node for create only.
const runcBin = fileURLToPath(new URL('../build/Release/nsbox-runc', import.meta.url));

interface Runtime {
  name: string;
  argv: string[];
  wrap: (c: Command) => Command;
}

let crunNs: CrunMountNamespace | undefined;
const runtimes: Runtime[] = [{ name: 'nsbox-runc', argv: [runcBin], wrap: (c) => c }];
if (hasCommand('crun')) {
  const steps = mountNamespaceSteps(layout);
  if (steps.length) crunNs = await CrunMountNamespace.start(steps, work);
  runtimes.push({ name: 'crun', argv: ['crun'], wrap: (c) => (crunNs ? crunNs.wrap(c) : c) });
}
if (hasCommand('runc')) runtimes.push({ name: 'runc', argv: ['runc'], wrap: (c) => c });

const spec = makeSpec(hasCommand('crun') ? 'crun' : 'runc', join(work, 'spec'), rootfs);
const results = new Map<string, number>();
const ctrResults = new Map<string, number>();
const first = new Map<string, number>();
const firstCtr = new Map<string, number>();
const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
/** Round `i`'s order: the runtimes rotated by i. */
const turn = (i: number): Runtime[] => runtimes.map((_, k) => runtimes[(i + k) % runtimes.length]!);
const samplesOf = (m: Map<string, number[]>, name: string): number[] => m.get(name) ?? (m.set(name, []), m.get(name)!);

/** `ctr run --rm` of /bin/true through containerd with each runtime as its runc binary. */
async function ctrRounds(): Promise<void> {
  const dir = join(work, 'containerd');
  const sock = join(dir, 'containerd.sock');
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'config.toml'), ['version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${sock}"`, '[ttrpc]', `  address = "${sock}.ttrpc"`, ''].join('\n'));
  const ready = new Promise<void>((resolve) => {
    const w = watch(dir, () => {
      if (existsSync(sock)) w.close(), resolve();
    });
  });
  const containerd = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
  const exited = new Promise((resolve) => containerd.once('exit', resolve));
  try {
    await ready;
    const binaries = new Map<string, string>();
    for (const rt of runtimes) {
      const wrapped = rt.wrap({ file: rt.argv[0]!, args: rt.argv.slice(1) });
      let binary = rt.argv[0]!;
      if (wrapped.file !== binary || wrapped.args.length) {
        binary = join(work, `${rt.name}-wrapper.sh`);
        writeFileSync(binary, `#!/bin/sh\nexec ${[wrapped.file, ...wrapped.args].map(quote).join(' ')} "$@"\n`);
        chmodSync(binary, 0o755);
      }
      binaries.set(rt.name, binary);
    }
    const samples = new Map<string, number[]>();
    // Round 0 is a warm-up, not counted: nsbox-runc's first create of a config compiles it in Node.
    for (let i = 0; i <= rounds; i++) {
      for (const rt of turn(i)) {
        const id = `nsbox-bench-ctr-${rt.name}-${process.pid}-${i}`;
        try {
          const ms = await timeSpawn({ file: 'ctr', args: ['--address', sock, 'run', '--rm', '--runc-binary', binaries.get(rt.name)!, '--runc-root', join(work, 'ctr-runc-root'), '--cgroup', id, '--rootfs', rootfs, id, '/bin/true'] });
          if (i > 0) samplesOf(samples, rt.name).push(ms);
          else firstCtr.set(rt.name, ms);
        } finally {
          removeChildCgroup(layout, id);
        }
      }
    }
    for (const rt of runtimes) ctrResults.set(rt.name, summarize(samples.get(rt.name)!).median);
  } finally {
    containerd.kill('SIGTERM');
    await exited;
  }
}

try {
  const samples = new Map<string, number[]>();
  // Round 0 is a warm-up, not counted: nsbox-runc's first create of a config compiles it in Node
  // and stores the plan (lib/oci/plan-cache.ts); the later ones, with another id each, use it.
  for (let i = 0; i <= rounds; i++) {
    for (const rt of turn(i)) {
      const bundle = join(work, `${rt.name}-bundle`);
      const state = join(work, `${rt.name}-state`);
      const cmd = (args: string[]): Command => rt.wrap({ file: rt.argv[0]!, args: [...rt.argv.slice(1), '--root', state, ...args] });
      const id = `nsbox-bench-rt-${rt.name}-${process.pid}-${i}`;
      writeBundle(bundle, spec, id);
      try {
        const a = await timeSpawn(cmd(['create', '--bundle', bundle, id]));
        const b = await timeSpawn(cmd(['start', id]));
        const c = await timeSpawn(cmd(['delete', '-f', id]));
        if (i > 0) samplesOf(samples, rt.name).push(a + b + c);
        else first.set(rt.name, a + b + c);
      } finally {
        removeChildCgroup(layout, id);
        if (existsSync(join(state, id))) execFileSync(rt.argv[0]!, [...rt.argv.slice(1), '--root', state, 'delete', '--force', id], { stdio: 'ignore' });
      }
    }
  }
  for (const rt of runtimes) results.set(rt.name, summarize(samples.get(rt.name)!).median);
  if (hasCommand('containerd') && hasCommand('ctr')) await ctrRounds();
} finally {
  crunNs?.stop();
  rmSync(work, { recursive: true, force: true });
}
const crun = results.get('crun');
console.log(`create && start && delete -f of /bin/true, median of ${rounds}:`);
for (const [name, ms] of results) console.log(`  ${name.padEnd(11)} ${ms.toFixed(1).padStart(8)} ms   ${crun ? `${(ms / crun).toFixed(2)}x crun` : ''}   (first round, not counted: ${first.get(name)?.toFixed(1)} ms)`);
const ctrCrun = ctrResults.get('crun');
if (ctrResults.size) console.log(`ctr run --rm of /bin/true through containerd, median of ${rounds}:`);
else console.log('ctr run --rm: not measured (needs containerd and ctr: test/install-deps.sh)');
for (const [name, ms] of ctrResults) console.log(`  ${name.padEnd(11)} ${ms.toFixed(1).padStart(8)} ms   ${ctrCrun ? `${(ms / ctrCrun).toFixed(2)}x crun` : ''}   (first round, not counted: ${firstCtr.get(name)?.toFixed(1)} ms)`);
console.log(`load average (1, 5, 15 min): ${loadAtStart} at the start, ${loadavg()} at the end`);
