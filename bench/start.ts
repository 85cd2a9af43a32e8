// Start-to-exit of /bin/true on the busybox rootfs: nsbox against crun, runc, bubblewrap and a
// plain fork+exec, all timed from this node process. See bench/README.md.
//
//   node --import=tsx bench/start.ts        (root; BENCH_N=50 warm-ups and runs per peer,
//                                            BENCH_ONLY=crun,runc to measure some peers only)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeChildCgroup, readCgroupLayout } from './lib/cgroup-hierarchies.ts';
import { CrunMountNamespace, mountNamespaceSteps } from './lib/crun-mount-namespace.ts';
import { makeSpec, writeBundle } from './lib/oci-bundle.ts';
import { probe, timeSpawn, type Command } from './lib/spawn-timer.ts';
import { summarize, type Summary } from './lib/stats.ts';
import { cleanupsFor } from './lib/cleanups.ts';
import { hasCommand } from './lib/has-command.ts';

const runs = Number(process.env.BENCH_N ?? 50);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`BENCH_N must be a positive integer, not ${process.env.BENCH_N}`);
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);

const repo = new URL('..', import.meta.url).pathname;
const rootfs = execFileSync('bash', [join(repo, 'test/fixtures/make-rootfs.sh')], { encoding: 'utf8' }).trim();
const work = mkdtempSync(join(tmpdir(), 'nsbox-bench-'));
const layout = readCgroupLayout();

// Undone in reverse order when the benchmark ends, however it ends.
const cleanups = cleanupsFor(work);

/** One way of starting /bin/true, ready to be timed. */
interface Runner {
  /** Starts and waits for one container; resolves to elapsed ms. */
  once(id: string): Promise<number>;
  /** Reports why the runner cannot work here, running it once if it needs to. */
  check?(id: string): Promise<string | undefined>;
  /** Called after every run, untimed: removes what the run may have left. */
  after?(id: string): void;
  /** Called once the peer is measured. */
  close?(): void;
  notes: string[];
}

interface Peer {
  key: string;
  name: string;
  /** A runner, or the reason this peer cannot run here. */
  prepare(): Promise<Runner | string>;
}


/** A runner that spawns a command; `build` gives the command for one container id. */
function spawnRunner(build: (id: string) => Command, after?: (id: string) => void): Runner {
  return {
    once: (id) => timeSpawn(build(id)),
    check: async (id) => {
      const result = await probe(build(id));
      after?.(id);
      return result.ok ? undefined : result.reason;
    },
    after,
    notes: [],
  };
}

let baseSpec: ReturnType<typeof makeSpec> | undefined;

/**
 * crun or runc, each with its own bundle and state root under the temp dir. A run's container id
 * doubles as its cgroup name (a relative cgroupsPath: beneath our own cgroup in every hierarchy);
 * after each run, anything the runtime left of either is removed.
 */
function ociRunner(tool: 'crun' | 'runc', launch: (c: Command) => Command, globalArgs: string[]): Runner {
  const bundle = join(work, `${tool}-bundle`);
  const state = join(work, `${tool}-state`);
  baseSpec ??= makeSpec(hasCommand('crun') ? 'crun' : 'runc', join(work, 'spec'), rootfs);
  const spec = baseSpec;
  const notes: string[] = [];
  let noted = false;
  const runner = spawnRunner(
    (id) => {
      writeBundle(bundle, spec, id);
      return launch({ file: tool, args: ['--root', state, ...globalArgs, 'run', '--bundle', bundle, id] });
    },
    (id) => {
      let left = removeChildCgroup(layout, id).length > 0;
      if (existsSync(join(state, id))) {
        left = true;
        execFileSync(tool, ['--root', state, 'delete', '--force', id], { stdio: 'ignore' });
      }
      if (left && !noted) notes.push(`${tool} left cgroups or state behind; removed after each run`);
      noted ||= left;
    },
  );
  runner.notes = notes;
  return runner;
}

const peers: Peer[] = [
  {
    key: 'nsbox',
    name: 'nsbox',
    async prepare() {
      type Container = { wait(): Promise<unknown>; remove(): Promise<unknown> };
      type ContainerClass = {
        run(options: { rootfs: string; command: string[]; stdio: 'ignore' }): Promise<Container>;
      };
      let Container: ContainerClass | undefined;
      try {
        const lib = (await import(new URL('../lib/index.ts', import.meta.url).href)) as { Container?: ContainerClass };
        Container = lib.Container;
      } catch (error) {
        return `cannot load lib/index.ts: ${(error as Error).message.split('\n')[0]}`;
      }
      if (typeof Container?.run !== 'function') return 'lib/index.ts does not export Container.run yet';
      const api = Container;
      // remove() is timed too: `crun run` and `runc run` delete their container before exiting.
      const once = async () => {
        const start = process.hrtime.bigint();
        const c = await api.run({ rootfs, command: ['/bin/true'], stdio: 'ignore' });
        let status: unknown;
        try {
          status = await c.wait();
        } finally {
          await c.remove();
        }
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        // wait() resolves to { exitCode, signal }; exitCode is null when a signal ended it.
        const { exitCode, signal } = (status ?? {}) as { exitCode?: unknown; signal?: unknown };
        if (exitCode !== 0) throw new Error(`/bin/true ended with ${signal ?? `status ${exitCode}`}`);
        return ms;
      };
      return { once, notes: [] };
    },
  },
  {
    key: 'crun',
    name: 'crun run',
    async prepare() {
      if (!hasCommand('crun')) return 'crun is not installed';
      const steps = mountNamespaceSteps(layout);
      let launch = (c: Command) => c;
      let close: (() => void) | undefined;
      const notes: string[] = [];
      if (steps.length > 0) {
        const ns = await CrunMountNamespace.start(steps, work);
        cleanups.push(() => ns.stop());
        close = () => ns.stop();
        launch = (c) => ns.wrap(c);
        const trueCommand = { file: join(rootfs, 'bin/true'), args: [] };
        const cost = async (c: Command) => summarize((await timeMany(() => timeSpawn(c), 2 * runs)).slice(runs)).median;
        const overhead = (await cost(ns.wrap(trueCommand))) - (await cost(trueCommand));
        const via = ns.launcher ? 'setns-exec (bench/lib/setns-exec.c)' : 'nsenter';
        notes.push(
          `crun starts through ${via} in a mount namespace that hides the hybrid cgroup2 mount and ` +
            `roots each cgroup hierarchy at our own cgroup; crun's figures include that extra exec ` +
            `(${overhead >= 0 ? '+' : ''}${overhead.toFixed(2)} ms: median of it running /bin/true, less /bin/true alone)`,
        );
      }
      const withCgroups = ociRunner('crun', launch, []);
      const reason = await withCgroups.check!(`nsbox-bench-crun-${process.pid}-probe`);
      const finish = (runner: Runner) => {
        runner.notes.unshift(...notes);
        runner.close = close;
        return runner;
      };
      if (!reason) return finish(withCgroups);
      const disabled = ociRunner('crun', launch, ['--cgroup-manager=disabled']);
      const why = await disabled.check!(`nsbox-bench-crun-${process.pid}-probe2`);
      if (why) {
        close?.();
        return `${reason}; with --cgroup-manager=disabled: ${why}`;
      }
      notes.push(`crun runs with --cgroup-manager=disabled (no cgroup) because: ${reason}`);
      return finish(disabled);
    },
  },
  {
    key: 'runc',
    name: 'runc run',
    async prepare() {
      if (!hasCommand('runc')) return 'runc is not installed';
      const runner = ociRunner('runc', (c) => c, []);
      return (await runner.check!(`nsbox-bench-runc-${process.pid}-probe`)) ?? runner;
    },
  },
  {
    key: 'bwrap',
    name: 'bwrap --unshare-all',
    async prepare() {
      if (!hasCommand('bwrap')) return 'bwrap is not installed';
      const args = ['--unshare-all', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true'];
      const runner = spawnRunner(() => ({ file: 'bwrap', args }));
      return (await runner.check!('')) ?? runner;
    },
  },
  {
    key: 'fork',
    name: 'fork+exec /bin/true',
    async prepare() {
      // The rootfs's own /bin/true: the same static busybox every container execs.
      const runner = spawnRunner(() => ({ file: join(rootfs, 'bin/true'), args: [] }));
      return (await runner.check!('')) ?? runner;
    },
  },
];

async function timeMany(once: (i: number) => Promise<number>, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) samples.push(await once(i));
  return samples;
}

async function measure(peer: Peer): Promise<Summary | string> {
  let runner: Runner | string;
  try {
    runner = await peer.prepare();
  } catch (error) {
    return (error as Error).message.split('\n')[0]!;
  }
  if (typeof runner === 'string') return runner;
  const idOf = (i: number) => `nsbox-bench-${peer.key}-${process.pid}-${i}`;
  const timed = async (i: number) => {
    const id = idOf(i);
    cleanups.push(() => runner.after?.(id));
    try {
      return await runner.once(id);
    } finally {
      cleanups.pop();
      runner.after?.(id);
    }
  };
  try {
    await timeMany(timed, runs);
    const samples = await timeMany((i) => timed(runs + i), runs);
    for (const note of runner.notes) console.error(`note: ${note}`);
    return summarize(samples);
  } catch (error) {
    return (error as Error).message;
  } finally {
    runner.close?.();
  }
}

console.error(`rootfs ${rootfs}; ${runs} warm-ups and ${runs} timed runs per peer`);
const results = new Map<string, Summary | string>();
for (const peer of peers) {
  if (only && !only.includes(peer.key)) continue;
  console.error(`measuring ${peer.name} ...`);
  results.set(peer.key, await measure(peer));
}

const crun = results.get('crun');
const crunMedian = typeof crun === 'object' ? crun.median : undefined;
const rows = peers
  .filter((p) => results.has(p.key))
  .map((p) => {
    const r = results.get(p.key)!;
    if (typeof r === 'string') return [p.name, `unavailable: ${r}`];
    const ratio = crunMedian ? (r.median / crunMedian).toFixed(2) : '-';
    return [p.name, r.median.toFixed(2), r.p90.toFixed(2), ratio];
  });
const header = ['peer', 'median ms', 'p90 ms', 'vs crun'];
const width = Math.max(...[header, ...rows].map((r) => r[0]!.length));
const line = (r: string[]) =>
  r.length === 2 ? `${r[0]!.padEnd(width)}  ${r[1]}` : [r[0]!.padEnd(width), ...r.slice(1).map((c) => c.padStart(9))].join('  ');
console.log(line(header));
for (const row of rows) console.log(line(row));

const nsbox = results.get('nsbox');
if (typeof nsbox === 'object' && crunMedian) console.log(`nsbox/crun = ${(nsbox.median / crunMedian).toFixed(2)}`);
else console.log(`nsbox/crun = n/a (${typeof nsbox === 'object' ? 'crun' : 'nsbox'} unavailable)`);
