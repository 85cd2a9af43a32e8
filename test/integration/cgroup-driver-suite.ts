// One behavioural suite for every CgroupDriver: cgroup-driver.test.ts runs it once per driver the
// kernel offers. Each test uses real processes placed with addProcess and cleans up in t.teardown.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { ExecutionContext, TestFn } from 'ava';
import { Cgroup, type CgroupLayout, type DriverKind, type Resources } from '../../lib/cgroup/index.js';
import { InvalidStateError } from '../../lib/errors.js';
import { scale, until } from '../fixtures/until.js';

/** Slow machines (the TCG-emulated cgroup-v2 VM) get every wait multiplied. */
/** A measurement window: a rate is taken over this much wall time (never a wait for a state). */
const measureOver = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type Feature = 'memory' | 'pids' | 'cpu' | 'cpuset' | 'io' | 'freeze' | 'kill' | 'empty';

export interface DriverUnderTest {
  /** Prefix of every test title, e.g. 'v1' or 'v2 (unified, hybrid host)'. */
  label: string;
  kind: DriverKind;
  layout: CgroupLayout;
  /** Parent of every cgroup the suite makes; unique per run and per driver. */
  parent: string;
  /** Features the driver can offer on this host; the others are skipped, with the reason. */
  missing: Partial<Record<Feature, string>>;
}

type Gated = {
  child: ChildProcessByStdio<Writable, Readable, Readable>;
  /** Lets the shell past its first `read`, once it is in the cgroup. */
  release(): void;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  out(): string;
  err(): string;
};

/** A /bin/sh that waits on stdin before running `script`, so it can be placed before it does anything. */
function gated(t: ExecutionContext, script: string): Gated {
  const child = spawn('/bin/sh', ['-c', `read _ || exit 9\n${script}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, release: () => child.stdin.end('\n'), exit, out: () => out, err: () => err };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const cpuUsec = async (cg: Cgroup) => (await cg.stats()).cpu?.usageUsec ?? NaN;

/** A block device to limit: the first disk found. */
function blockDevice(): string | undefined {
  for (const name of ['vda', 'sda', 'nvme0n1', 'xvda']) if (existsSync(`/dev/${name}`)) return `/dev/${name}`;
  return undefined;
}

/**
 * A shell command that does 4 MiB of direct reads on `dev`: from the device itself where we may open
 * it (the VM's null disk), else through a file on a file system it backs (a container's root disk).
 */
function directReads(dev: string): string | undefined {
  if (spawnSync('dd', [`if=${dev}`, 'of=/dev/null', 'bs=4k', 'count=1', 'iflag=direct'], { stdio: 'ignore' }).status === 0) {
    return `dd if=${dev} of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null`;
  }
  const st = statSync(os.tmpdir(), { bigint: true });
  const dst = statSync(dev, { bigint: true });
  if (st.dev !== dst.rdev) return undefined;
  const file = path.join(os.tmpdir(), `nsbox-io-${process.pid}`);
  return `dd if=/dev/zero of=${file} bs=64k count=64 oflag=direct 2>/dev/null && dd if=${file} of=/dev/null bs=64k iflag=direct 2>/dev/null; rc=$?; rm -f ${file}; exit $rc`;
}

export function cgroupDriverSuite(test: TestFn, d: DriverUnderTest): void {
  let seq = 0;
  const make = async (t: ExecutionContext, resources?: Resources) => {
    const name = `c${++seq}-${t.title.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`;
    const cg = await Cgroup.create(name, { parent: d.parent, driver: d.kind, layout: d.layout, eventIntervalMs: 100, ...(resources ? { resources } : {}) });
    t.teardown(() => cg.remove({ force: true }));
    return cg;
  };
  const when = (features: Feature | Feature[], title: string, fn: (t: ExecutionContext) => Promise<void>) => {
    const why = ([] as Feature[]).concat(features).map((f) => d.missing[f]).find(Boolean);
    if (why) test.serial.skip(`${d.label}: ${title} — skipped: ${why}`, () => undefined);
    else test.serial(`${d.label}: ${title}`, fn);
  };

  test.serial(`${d.label}: create makes a directory per hierarchy, placement points at them, remove leaves none`, async (t) => {
    const cg = await Cgroup.create('lifecycle', { parent: d.parent, driver: d.kind, layout: d.layout });
    t.teardown(() => cg.remove({ force: true }));
    const dirs = Object.values(cg.paths);
    t.true(dirs.length > 0);
    for (const dir of dirs) t.true(existsSync(path.join(dir, 'cgroup.procs')), dir);
    const p = cg.placement();
    if (d.kind === 'v2') t.deepEqual(p, { v2Path: cg.paths.unified!, tasksFiles: [] });
    else {
      t.deepEqual(new Set(p.tasksFiles), new Set(Object.entries(cg.paths).filter(([k]) => k !== 'unified').map(([, dir]) => path.join(dir, 'tasks'))));
      t.is(p.v2Path, cg.paths.unified);
    }
    await t.throwsAsync(Cgroup.create('lifecycle', { parent: d.parent, driver: d.kind, layout: d.layout }), { instanceOf: InvalidStateError });
    const reopened = await Cgroup.open(cg.paths, { layout: d.layout, driver: d.kind });
    t.deepEqual(reopened.paths, cg.paths);
    await cg.remove();
    for (const dir of dirs) t.false(existsSync(dir), dir);
    await cg.remove(); // already gone: fine
  });

  test.serial(`${d.label}: addProcess and procs; remove refuses a busy cgroup unless forced`, async (t) => {
    const cg = await make(t);
    const p = gated(t, 'sleep 60');
    await cg.addProcess(p.child.pid!);
    t.deepEqual(await cg.procs(), [p.child.pid!]);
    const own = readFileSync(`/proc/${p.child.pid}/cgroup`, 'utf8');
    for (const [key, dir] of Object.entries(cg.paths)) {
      const mount = key === 'unified' ? d.layout.unified! : d.layout.controllers[key]!.mountpoint;
      t.true(own.includes(`:${dir.slice(mount.length)}\n`), `${key}: ${own}`);
    }
    await t.throwsAsync(cg.remove(), { instanceOf: InvalidStateError });
    await cg.remove({ force: true });
    t.is((await p.exit).signal, 'SIGKILL');
    for (const dir of Object.values(cg.paths)) t.false(existsSync(dir), dir);
  });

  test.serial(`${d.label}: the last cgroup removed takes its empty nsbox-named parent with it, never another parent`, async (t) => {
    const opts = (parent: string) => ({ parent: `${d.parent}/${parent}`, driver: d.kind, layout: d.layout });
    const parents = (cg: Cgroup) => Object.values(cg.paths).map((dir) => path.dirname(dir));
    const a = await Cgroup.create('a', opts('nsbox-gc'));
    const b = await Cgroup.create('b', opts('nsbox-gc'));
    t.teardown(() => Promise.all([a.remove({ force: true }), b.remove({ force: true })]));
    const gc = parents(a);
    await a.remove();
    for (const dir of gc) t.true(existsSync(dir), `${dir}: b is still in it`);
    await b.remove();
    for (const dir of gc) t.false(existsSync(dir), `${dir}: removed with its last cgroup`);
    // A parent whose name does not say nsbox is not nsbox's: it stays, empty.
    const c = await Cgroup.create('c', opts('kept'));
    const kept = parents(c);
    t.teardown(async () => {
      for (const dir of kept) await rmdir(dir).catch(() => undefined);
    });
    await c.remove();
    for (const dir of kept) t.true(existsSync(dir), `${dir}: not nsbox's`);
  });

  test.serial(`${d.label}: an empty nsbox-named parent that another tool made stays after its last cgroup's removal`, async (t) => {
    // Made here with a plain mkdir, as another tool would, beside a cgroup that keeps the suite's parent in place.
    const probe = await Cgroup.create('probe', { parent: d.parent, driver: d.kind, layout: d.layout });
    t.teardown(() => probe.remove({ force: true }));
    const foreign = Object.values(probe.paths).map((dir) => path.join(path.dirname(dir), 'nsbox'));
    for (const dir of foreign) mkdirSync(dir);
    t.teardown(async () => {
      for (const dir of foreign) await rmdir(dir).catch(() => undefined);
    });
    const c = await Cgroup.create('c', { parent: `${d.parent}/nsbox`, driver: d.kind, layout: d.layout });
    t.deepEqual(Object.values(c.paths).map((dir) => path.dirname(dir)).sort(), [...foreign].sort());
    await c.remove();
    for (const dir of Object.values(c.paths)) t.false(existsSync(dir), dir);
    for (const dir of foreign) t.true(existsSync(dir), `${dir}: not nsbox's to remove`);
  });

  when('memory', 'memory limit is set and read back', async (t) => {
    const cg = await make(t, { memory: '32m' });
    t.is((await cg.stats()).memory?.limit, 32 * 2 ** 20);
    await cg.set({ memory: 48 * 2 ** 20, memorySwap: '64m' });
    const m = (await cg.stats()).memory!;
    t.is(m.limit, 48 * 2 ** 20);
    if (m.swapLimit !== undefined) t.is(m.swapLimit, 16 * 2 ** 20);
    await cg.set({ memory: -1, memorySwap: -1 });
    t.is((await cg.stats()).memory?.limit, null);
  });

  when('memory', "a process that allocates past the limit is OOM-killed and 'oom' fires; one below it is not", async (t) => {
    const cg = await make(t, { memory: '32m', memorySwap: '32m' });
    const small = gated(t, 'x=$(head -c 2000000 /dev/zero | tr "\\0" a); echo ok');
    await cg.addProcess(small.child.pid!);
    small.release();
    t.deepEqual(await small.exit, { code: 0, signal: null });
    t.is((await cg.stats()).memory?.oomKills, 0);

    const oom = once(cg, 'oom');
    const big = gated(t, 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived');
    await cg.addProcess(big.child.pid!);
    big.release();
    const [event] = await withTimeout(oom, scale(15_000), "the 'oom' event");
    t.true(event.oomKills >= 1);
    t.is((await big.exit).signal, 'SIGKILL');
    t.false(big.out().includes('survived'));
    const m = (await cg.stats()).memory!;
    t.true(m.oomKills >= 1);
    t.true((m.peak ?? m.limit!) <= 32 * 2 ** 20);
  });

  when('pids', 'the pids limit makes forks fail inside, not outside', async (t) => {
    const cg = await make(t, { pids: 4 });
    // The shell plus three sleeps fill the limit; the fourth fork fails.
    const p = gated(t, 'for i in 1 2 3 4 5 6; do sleep 60 & echo started; done; wait');
    await cg.addProcess(p.child.pid!);
    p.release();
    await until('the fork failure', () => /fork/i.test(p.err()) || p.child.exitCode !== null);
    t.is(p.out().match(/started/g)?.length, 3);
    t.regex(p.err(), /fork/i);
    const s = (await cg.stats()).pids!;
    t.is(s.limit, 4);
    t.true(s.current <= 4);
    const host = spawn('/bin/true');
    t.is((await once(host, 'exit'))[0], 0);
  });

  when('cpu', 'cpus 0.5 gives a busy loop 0.4–0.6 CPU-seconds per wall second', async (t) => {
    const cg = await make(t, { cpus: 0.5 });
    const p = gated(t, 'while :; do :; done');
    await cg.addProcess(p.child.pid!);
    p.release();
    await until('CPU use', async () => (await cpuUsec(cg)) > 0);
    const u0 = await cpuUsec(cg);
    const t0 = performance.now();
    await measureOver(2000);
    const u1 = await cpuUsec(cg);
    const rate = (u1 - u0) / 1000 / (performance.now() - t0);
    t.log(`CPU-seconds per wall second: ${rate.toFixed(3)}`);
    t.true(rate >= 0.4 && rate <= 0.6, `rate ${rate}`);
    const s = (await cg.stats()).cpu!;
    t.true((s.nrThrottled ?? 0) > 0);
    t.true((s.throttledUsec ?? 0) > 0);
  });

  when(['cpu', 'cpuset'], 'weights 1:4 on one pinned CPU split the time roughly 1:4', async (t) => {
    const cpu = String(os.availableParallelism() - 1);
    const light = await make(t, { cpuWeight: 100, cpuset: { cpus: cpu } });
    const heavy = await make(t, { cpuWeight: 400, cpuset: { cpus: cpu } });
    const a = gated(t, 'while :; do :; done');
    const b = gated(t, 'while :; do :; done');
    await light.addProcess(a.child.pid!);
    await heavy.addProcess(b.child.pid!);
    a.release();
    b.release();
    await until('CPU use of both', async () => (await cpuUsec(light)) > 0 && (await cpuUsec(heavy)) > 0);
    const [l0, h0] = [await cpuUsec(light), await cpuUsec(heavy)];
    await measureOver(2000);
    const [l1, h1] = [await cpuUsec(light), await cpuUsec(heavy)];
    const ratio = (h1 - h0) / (l1 - l0);
    t.log(`heavy/light CPU time: ${ratio.toFixed(2)}`);
    t.true(ratio > 2.5 && ratio < 6.5, `ratio ${ratio}`);
  });

  when('cpuset', 'cpuset is the affinity of the processes inside', async (t) => {
    const cg = await make(t, { cpuset: { cpus: '0', mems: '0' } });
    const p = gated(t, 'sleep 60');
    await cg.addProcess(p.child.pid!);
    const status = readFileSync(`/proc/${p.child.pid}/status`, 'utf8');
    t.regex(status, /^Cpus_allowed_list:\s+0$/m);
  });

  when('io', 'blkio weight and per-device limits are written, io stats count reads', async (t) => {
    const dev = blockDevice();
    if (!dev) throw new Error('no block device');
    const cg = await make(t, { blkio: { devices: [{ path: dev, readBps: '100m', writeIops: 1000 }] } });
    const dir = cg.version === 2 ? cg.paths.unified! : cg.paths.blkio!;
    if (cg.version === 2) t.regex(readFileSync(path.join(dir, 'io.max'), 'utf8'), /rbps=104857600 .*wiops=1000/);
    else {
      t.regex(readFileSync(path.join(dir, 'blkio.throttle.read_bps_device'), 'utf8'), / 104857600$/m);
      t.regex(readFileSync(path.join(dir, 'blkio.throttle.write_iops_device'), 'utf8'), / 1000$/m);
    }
    // The weight file depends on the I/O scheduler (CFQ, BFQ) or iocost being in the kernel.
    const weightFile = ['blkio.weight', 'blkio.bfq.weight', 'io.bfq.weight', 'io.weight'].find((f) => existsSync(path.join(dir, f)));
    if (weightFile) {
      await cg.set({ blkio: { weight: 300 } });
      t.regex(readFileSync(path.join(dir, weightFile), 'utf8'), weightFile === 'io.weight' ? /^default 2930$/m : /^(default )?300$/m);
    } else {
      t.log('blkio weight: not checked, the kernel has no CFQ, BFQ or iocost weight file');
      await t.throwsAsync(cg.set({ blkio: { weight: 300 } }), { message: /weight/ });
    }
    const reads = directReads(dev);
    if (!reads) {
      t.log(`io stats: not checked, ${dev} cannot be opened and ${os.tmpdir()} is not on it`);
      return;
    }
    const before = (await cg.stats()).io!;
    const p = gated(t, reads);
    await cg.addProcess(p.child.pid!);
    p.release();
    t.is((await p.exit).code, 0);
    const after = (await cg.stats()).io!;
    t.true(after.readBytes - before.readBytes >= 64 * 65536, JSON.stringify({ before, after }));
    t.true(after.readOps > before.readOps);
  });

  when('freeze', 'freeze stops progress and thaw resumes it', async (t) => {
    const cg = await make(t);
    const p = gated(t, 'while :; do :; done');
    await cg.addProcess(p.child.pid!);
    p.release();
    await until('CPU use', async () => (await cpuUsec(cg)) > 0);
    await cg.freeze();
    const u1 = await cpuUsec(cg);
    await measureOver(scale(300));
    const u2 = await cpuUsec(cg);
    t.is(u2, u1, 'a frozen cgroup uses no CPU');
    t.deepEqual(await cg.procs(), [p.child.pid!]);
    await cg.thaw();
    await until('the thawed loop to run again', async () => (await cpuUsec(cg)) > u2);
  });

  when('kill', 'kill ends every process, including the ones forked inside', async (t) => {
    const cg = await make(t);
    const p = gated(t, 'sleep 60 & sleep 60 & sleep 60 & wait');
    await cg.addProcess(p.child.pid!);
    p.release();
    await until('four processes', async () => (await cg.procs()).length === 4);
    const pids = await cg.procs();
    await cg.kill();
    t.deepEqual(await cg.procs(), []);
    t.is((await p.exit).signal, 'SIGKILL');
    for (const pid of pids.filter((x) => x !== p.child.pid)) {
      await until(`pid ${pid} to be reaped`, () => !existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')));
    }
  });

  when(['kill', 'freeze'], 'kill ends the processes of a frozen cgroup too', async (t) => {
    const cg = await make(t);
    const p = gated(t, 'sleep 60 & wait');
    await cg.addProcess(p.child.pid!);
    p.release();
    await until('two processes', async () => (await cg.procs()).length === 2);
    await cg.freeze();
    await cg.kill({ timeoutMs: scale(5000) });
    t.deepEqual(await cg.procs(), []);
    t.is((await p.exit).signal, 'SIGKILL');
  });

  when('empty', "'empty' fires when the last process leaves, through on() and events()", async (t) => {
    const cg = await make(t);
    const p = gated(t, 'sleep 1');
    await cg.addProcess(p.child.pid!);
    const empty = once(cg, 'empty');
    const abort = new AbortController();
    const iterated = (async () => {
      for await (const e of cg.events({ signal: abort.signal })) if (e.type === 'empty') return e;
      return undefined;
    })();
    // Populated from addProcess until a second after the release (its `sleep 1`): the watcher's
    // first read sees it populated, whenever it comes.
    p.release();
    await withTimeout(empty, scale(10_000), "the 'empty' event");
    t.deepEqual(await withTimeout(iterated, scale(1000), 'events() to yield'), { type: 'empty' });
    abort.abort();
    t.deepEqual(await cg.procs(), []);
    t.is(cg.listenerCount('empty'), 0, 'the iterator removed its listener');
  });

  test.serial(`${d.label}: stats change as the processes work`, async (t) => {
    const cg = await make(t);
    const s0 = await cg.stats();
    const p = gated(t, 'x=$(head -c 8000000 /dev/zero | tr "\\0" a); echo ready; sleep 60');
    await cg.addProcess(p.child.pid!);
    p.release();
    await until('the allocation', () => p.out().includes('ready'), 20_000);
    const s1 = await cg.stats();
    t.true(s1.cpu!.usageUsec > s0.cpu!.usageUsec);
    if (s1.memory) {
      t.true(s1.memory.current >= 8_000_000, `current ${s1.memory.current}`);
      t.true((s1.memory.anon ?? 0) >= 8_000_000, `anon ${s1.memory.anon}`);
      t.true((s1.memory.pgfault ?? 0) > (s0.memory!.pgfault ?? 0));
    } else t.log('memory: no memory controller for this driver');
    // The shell forks its sleep after it printed: until then it is alone.
    if (s1.pids) await until('the shell and its sleep', async () => (await cg.stats()).pids!.current === 2);
  });

  test.serial(`${d.label}: prune removes empty leftovers beneath the parent and keeps busy ones`, async (t) => {
    const parent = `${d.parent}/prune`;
    const opts = { parent, driver: d.kind, layout: d.layout };
    const leftover = await Cgroup.create('crashed', opts); // as if its process died without remove()
    const busy = await Cgroup.create('busy', opts);
    t.teardown(() => busy.remove({ force: true }));
    t.teardown(() => leftover.remove({ force: true }));
    const p = gated(t, 'sleep 60');
    await busy.addProcess(p.child.pid!);
    t.deepEqual(await Cgroup.prune(opts), [], 'younger than minAgeMs: kept');
    const removed = await Cgroup.prune({ ...opts, minAgeMs: 0 });
    t.deepEqual(new Set(removed), new Set(Object.values(leftover.paths)));
    for (const dir of Object.values(leftover.paths)) t.false(existsSync(dir), dir);
    for (const dir of Object.values(busy.paths)) t.true(existsSync(dir), dir);
    await busy.remove({ force: true });
    const rest = await Cgroup.prune({ ...opts, minAgeMs: 0, includeParent: true });
    t.true(rest.length > 0);
  });
}
