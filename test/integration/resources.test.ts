/**
 * cgroup limits enforced on real kernels, through containers: memory (OOM kill), pids, cpu quota,
 * cpuset, weights, freeze, stats, and removal. Runs on this host's cgroup v1/hybrid and, through
 * test/cgroup-v2-in-vm.sh, on a cgroup2-only kernel.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Container } from '../../lib/index.js';
import { collect, rootfs, serialRootTest } from './_helpers.js';
import { until } from '../fixtures/until.js';

// CPU-share tests need a quiet machine: run this file's tests one at a time.
const test = serialRootTest;
const slow = process.env.NSBOX_TEST_SLOW ? 10 : 1;
/** A measurement window: a rate is taken over this much wall time (never a wait for a state). */
const measureOver = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuUsec = async (c: Container) => (await c.stats()).cpu!.usageUsec;
/** Until each container's busy loop has been given CPU time. */
const running = (...cs: Container[]) => until('the busy loops to run', async () => (await Promise.all(cs.map(cpuUsec))).every((u) => u > 0));
const busy = ['/bin/sh', '-c', 'while :; do :; done'];

test('memory: past the limit the OOM killer ends the container and oomKilled is true', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/tail', '/dev/zero'], resources: { memory: '32m', memorySwap: '32m' }, stdio: 'ignore' });
  const status = await c.wait();
  t.deepEqual(status, { exitCode: null, signal: 'SIGKILL', oomKilled: true });
  t.true((await c.stats()).memory!.oomKills >= 1);
});

test('memory: under the limit nothing is killed', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'head -c 8000000 /dev/zero | tail > /dev/null; echo done'], resources: { memory: '64m' } });
  const [out, status] = await Promise.all([collect(c.stdout), c.wait()]);
  t.is(out, 'done\n');
  t.deepEqual(status, { exitCode: 0, signal: null, oomKilled: false });
  const stats = await c.stats();
  t.is(stats.memory!.limit, 64 * 2 ** 20);
});

test('pids: forks beyond the limit fail inside; the host is unaffected', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'for i in $(seq 1 30); do sleep 60 & done; echo forked; sleep 60'], resources: { pids: 8 } });
  let err = '';
  c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await until('a fork to fail inside', () => /fork/i.test(err));
  t.regex(err, /can't fork|Resource temporarily unavailable|fork/i);
  const stats = await c.stats();
  t.is(stats.pids!.limit, 8);
  t.true(stats.pids!.current <= 8, `pids.current ${stats.pids!.current}`);
  t.is(spawnSync('/bin/true').status, 0, 'the host can still fork');
});

test('cpu: with cpus 0.5 a busy loop gets 0.4–0.6 CPU-seconds per wall second', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: busy, resources: { cpus: 0.5 }, stdio: 'ignore' });
  await running(c);
  const a = await c.stats();
  const t0 = performance.now();
  await measureOver(2000 * slow);
  const b = await c.stats();
  const wall = (performance.now() - t0) / 1000;
  const share = (b.cpu!.usageUsec - a.cpu!.usageUsec) / 1e6 / wall;
  t.log(`cpu share ${share.toFixed(3)} over ${wall.toFixed(2)} s`);
  t.true(share >= 0.4 && share <= 0.6, `share ${share}`);
});

test('cpuset: visible as the affinity inside', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'grep Cpus_allowed_list /proc/self/status'], resources: { cpuset: { cpus: '1' } } });
  const [out] = await Promise.all([collect(c.stdout), c.wait()]);
  t.regex(out, /Cpus_allowed_list:\s+1\n/);
});

test('weights: two busy containers with weights 1:4 on one CPU split time about 1:4', async (t) => {
  await using a = await Container.run({ rootfs: rootfs(), command: busy, resources: { cpuWeight: 100, cpuset: { cpus: '0' } }, stdio: 'ignore' });
  await using b = await Container.run({ rootfs: rootfs(), command: busy, resources: { cpuWeight: 400, cpuset: { cpus: '0' } }, stdio: 'ignore' });
  await running(a, b);
  const [a0, b0] = await Promise.all([a.stats(), b.stats()]);
  await measureOver(2500 * slow);
  const [a1, b1] = await Promise.all([a.stats(), b.stats()]);
  const ua = a1.cpu!.usageUsec - a0.cpu!.usageUsec;
  const ub = b1.cpu!.usageUsec - b0.cpu!.usageUsec;
  const ratio = ub / ua;
  t.log(`usage ${(ua / 1e6).toFixed(2)} s vs ${(ub / 1e6).toFixed(2)} s: ratio ${ratio.toFixed(2)}`);
  t.true(ratio > 2.5 && ratio < 6, `ratio ${ratio}`);
});

test('freeze: a paused container makes no progress, then resumes', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: busy, resources: { cpus: 1 }, stdio: 'ignore' });
  await running(c);
  // pause() returns once the freezer says FROZEN: from then on no task of it runs.
  await c.pause();
  const p0 = await c.stats();
  await measureOver(500 * slow);
  const p1 = await c.stats();
  t.true(p1.cpu!.usageUsec - p0.cpu!.usageUsec < 20_000, `paused usage grew ${p1.cpu!.usageUsec - p0.cpu!.usageUsec} µs`);
  await c.resume();
  await until('the resumed loop to use 0.1 CPU-seconds', async () => (await cpuUsec(c)) - p1.cpu!.usageUsec > 100_000);
  // A paused container can still be removed.
  await c.pause();
});

test('stats change as the container works; the stream ends when it exits', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', 'read x; head -c 20000000 /dev/zero | tail > /dev/null; read y'] });
  const before = await c.stats();
  c.stdin!.write('go\n');
  const mem = (s: typeof before) => s.memory!.peak ?? s.memory!.current;
  // The work is done when the shell, its pipe drained, waits at its second read: cpu and memory grew.
  const after = await until('the cpu and memory used by the work', async () => {
    const s = await c.stats();
    return s.cpu!.usageUsec > before.cpu!.usageUsec && mem(s) > mem(before) && s;
  });
  t.log(`cpu ${before.cpu!.usageUsec} -> ${after.cpu!.usageUsec} µs, memory ${mem(before)} -> ${mem(after)} bytes`);
  let samples = 0;
  const stream = c.stats({ stream: true, intervalMs: 50 });
  for await (const s of stream) {
    // The container ends after the first sample: the stream must end with it.
    if (samples++ === 0) c.stdin!.end('\n');
    t.is(typeof s.pids!.current, 'number');
  }
  t.true(samples >= 1);
  t.deepEqual(await c.wait(), { exitCode: 0, signal: null });
});

test("the container's process and an exec's are in every hierarchy of its cgroup (they join v1 ones themselves); the caller stays where it was", async (t) => {
  const before = readFileSync('/proc/self/cgroup', 'utf8');
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore', resources: { pids: 50 } });
  const p = await c.exec(['/bin/sleep', '100'], { stdio: 'ignore' });
  const dirs = Object.values(c.cgroup!.paths);
  for (const dir of dirs) {
    const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').map(Number);
    t.true(procs.includes(c.pid!), `init ${c.pid} in ${dir}`);
    t.true(procs.includes(p.pid), `exec ${p.pid} in ${dir}`);
  }
  t.is(readFileSync('/proc/self/cgroup', 'utf8'), before);
  p.kill('SIGKILL');
  await p.wait();
});

test('remove() leaves no cgroup; exec joins the container cgroup', async (t) => {
  const c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore', resources: { pids: 50 } });
  t.teardown(() => c.remove());
  const paths = Object.values(c.cgroup!.paths);
  t.true(paths.length > 0 && paths.every((p) => existsSync(p)));
  const p = await c.exec(['/bin/sh', '-c', 'cat /proc/self/cgroup; read x']);
  const outP = collect(p.stdout);
  t.true((await c.cgroup!.procs()).includes(p.pid), 'exec was placed in the container cgroup');
  p.stdin!.end('\n');
  const [out] = await Promise.all([outP, p.wait()]);
  for (const line of out.trim().split('\n')) t.true(line.endsWith(':/'), `exec is in the container's cgroup namespace root: ${line}`);
  await c.remove();
  t.true(paths.every((p) => !existsSync(p)), 'every cgroup directory is gone');
});
