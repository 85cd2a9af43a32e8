// Memory of a container's supervisor: nsbox-shim against conmon (running crun), each supervising
// one idle `sleep` container on the busybox rootfs. RSS and PSS come from /proc/PID/smaps_rollup
// after the supervisor has been idle for a second (PSS divides shared pages among their users, so
// it is the fair figure for "what one more container costs").
//
//   node --import=tsx bench/shim.ts        (root; BENCH_IDLE_MS=1000 idle time before measuring)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpawnPlan } from '../lib/native.ts';
import { buildContainerPlan, buildEnv } from '../lib/runtime/plan.ts';
import { ContainerOptionsSchema, validate } from '../lib/runtime/options.ts';
import { hostFacts } from '../lib/runtime/host.ts';
import { capabilityMask, capabilitySet } from '../lib/runtime/capabilities.ts';
import { compileSeccomp, defaultProfile, hostSeccompArch } from '../lib/runtime/seccomp/index.ts';
import { shimPath, startDetached, stopDetached } from '../lib/runtime/shim.ts';
import { readCgroupLayout } from './lib/cgroup-hierarchies.ts';
import { CrunMountNamespace, mountNamespaceSteps } from './lib/crun-mount-namespace.ts';
import { makeSpec } from './lib/oci-bundle.ts';
import type { Command } from './lib/spawn-timer.ts';
import { cleanupsFor } from './lib/cleanups.ts';
import { hasCommand } from './lib/has-command.ts';

const idleMs = Number(process.env.BENCH_IDLE_MS ?? 1000);
const repo = new URL('..', import.meta.url).pathname;
const rootfs = execFileSync('bash', [join(repo, 'test/fixtures/make-rootfs.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-shim-'));

// Undone in reverse order when the benchmark ends, however it ends.
const cleanups = cleanupsFor(work);

interface Memory {
  rssKb: number;
  pssKb: number;
  pssAnonKb: number;
}

function memoryOf(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKb: field('Rss'), pssKb: field('Pss'), pssAnonKb: field('Pss_Anon') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}
async function gone(pid: number, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; alive(pid) && Date.now() < end; ) await sleep(20);
}
function killQuietly(pid: number | undefined): void {
  if (pid === undefined || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** The plan Container.start() makes for `sleep 1000` on the rootfs (docker's caps and seccomp, no cgroup). */
function sleepPlan(): SpawnPlan {
  const argv = ['sleep', '1000'];
  const cfg = validate(ContainerOptionsSchema, { rootfs, command: argv }, 'container options');
  const facts = hostFacts();
  const caps = capabilitySet(cfg, false);
  const arch = hostSeccompArch();
  const seccomp = arch ? compileSeccomp(defaultProfile, { arch, caps: [...caps].map((c) => `CAP_${c}`) }) : undefined;
  const parts = buildContainerPlan(cfg, {
    id: 'benchshim000', root: rootfs, sandbox: false, sandboxEntries: [], privileged: facts.privileged, hostUid: facts.uid,
    hostGid: facts.gid, cgroups: facts.cgroups, bindIsDir: [],
    security: { caps: capabilityMask(caps), ambient: 0, noNewPrivileges: true, ...(seccomp ? { seccomp } : {}) },
  });
  return {
    cloneFlags: parts.cloneFlags, ops: parts.ops, argv, env: buildEnv({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, undefined), path: '/usr/sbin:/usr/bin:/sbin:/bin',
    stdio: [-1, -1, -1], denySetgroups: parts.denySetgroups, ...(parts.uidMap ? { uidMap: parts.uidMap, gidMap: parts.gidMap } : {}),
  };
}

async function measureNsbox(): Promise<Memory> {
  const dir = join(work, 'nsbox');
  const { shimPid, pid } = await startDetached(sleepPlan(), dir, { stopTimeout: 0.2 });
  cleanups.push(() => {
    killQuietly(pid);
    killQuietly(shimPid);
  });
  await sleep(idleMs);
  const m = memoryOf(shimPid);
  stopDetached(dir);
  await gone(shimPid);
  return m;
}


/** conmon supervising crun's `sleep 1000`, as podman runs it; a string says why it cannot run here. */
async function measureConmon(notes: string[]): Promise<Memory | string> {
  if (!hasCommand('conmon')) return 'conmon is not installed (Debian package conmon)';
  if (!hasCommand('crun')) return 'crun is not installed';
  let launch = (c: Command) => c;
  const steps = mountNamespaceSteps(readCgroupLayout());
  if (steps.length > 0) {
    const ns = await CrunMountNamespace.start(steps, work);
    cleanups.push(() => ns.stop());
    launch = (c) => ns.wrap(c);
    notes.push('conmon and crun run in a mount namespace that hides the hybrid cgroup2 mount (see bench/lib/crun-mount-namespace.ts)');
  }
  const dir = join(work, 'conmon');
  const bundle = join(dir, 'bundle');
  const state = join(dir, 'state');
  for (const d of [bundle, state, join(dir, 'exit'), join(dir, 'sock')]) mkdirSync(d, { recursive: true });
  const spec = makeSpec('crun', join(dir, 'spec'), rootfs);
  spec.process.args = ['sleep', '1000'];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  // No cgroup for crun, as none for nsbox-shim here: the two supervise the same kind of container.
  const crun = (args: string[]) => launch({ file: 'crun', args: ['--cgroup-manager=disabled', `--root=${state}`, ...args] });
  const run = (c: Command) => execFileSync(c.file, c.args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  const id = `nsbox-bench-${process.pid}`;
  cleanups.push(() => {
    try {
      run(crun(['delete', '--force', id]));
    } catch {
      // not created
    }
  });
  const conmonPidFile = join(dir, 'conmon.pid');
  const ctrPidFile = join(dir, 'ctr.pid');
  try {
    run(launch({
      file: 'conmon',
      args: [
        '--api-version', '1', '-c', id, '-u', id, '-n', id, '-r', execFileSync('sh', ['-c', 'command -v crun'], { encoding: 'utf8' }).trim(),
        '--runtime-arg', '--cgroup-manager=disabled', '--runtime-arg', `--root=${state}`, '-b', bundle, '-p', ctrPidFile,
        '-l', `k8s-file:${join(dir, 'ctr.log')}`, '--exit-dir', join(dir, 'exit'), '--socket-dir-path', join(dir, 'sock'),
        '--conmon-pidfile', conmonPidFile,
      ],
    }));
  } catch (e) {
    return `conmon failed: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`;
  }
  // conmon's first process returns once it has forked; crun create finishes in the background.
  for (const end = Date.now() + 10_000; !existsSync(ctrPidFile) && Date.now() < end; ) await sleep(20);
  const conmonPid = existsSync(conmonPidFile) ? Number(readFileSync(conmonPidFile, 'utf8')) : undefined;
  const ctrPid = existsSync(ctrPidFile) ? Number(readFileSync(ctrPidFile, 'utf8')) : undefined;
  cleanups.push(() => {
    killQuietly(ctrPid);
    killQuietly(conmonPid);
  });
  if (!conmonPid || !ctrPid || !alive(conmonPid)) return `conmon did not create the container (${dir}/ctr.log)`;
  try {
    run(crun(['start', id]));
  } catch (e) {
    return `crun start failed: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`;
  }
  await sleep(idleMs);
  const m = memoryOf(conmonPid);
  killQuietly(ctrPid);
  await gone(conmonPid);
  return m;
}

const notes: string[] = [];
const nsbox = await measureNsbox();
const conmon = await measureConmon(notes).catch((e: Error) => `conmon: ${e.message}`);
for (const n of notes) console.error(`note: ${n}`);

const rows: string[][] = [['supervisor', 'RSS kB', 'PSS kB', 'PSS anon kB', 'binary kB']];
const size = (file: string) => String(Math.round(statSync(file).size / 1024));
rows.push(['nsbox-shim', String(nsbox.rssKb), String(nsbox.pssKb), String(nsbox.pssAnonKb), size(shimPath())]);
if (typeof conmon === 'string') console.log(`conmon unavailable: ${conmon}`);
else rows.push(['conmon', String(conmon.rssKb), String(conmon.pssKb), String(conmon.pssAnonKb), size(execFileSync('sh', ['-c', 'command -v conmon'], { encoding: 'utf8' }).trim())]);
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
if (typeof conmon !== 'string') {
  console.log(`nsbox-shim/conmon: RSS ${(nsbox.rssKb / conmon.rssKb).toFixed(2)}, PSS ${(nsbox.pssKb / conmon.pssKb).toFixed(2)}`);
}

// The crun helper's pipe keeps the event loop alive: end here, so the cleanups run (on 'exit').
process.exit(0);
