/** exec joins the container: pid namespace (PID 1 is the container's), hostname, mounts, network. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Container, Engine, InvalidStateError, NsboxError, type CgroupStats } from '../../lib/index.js';
import { collect, rootTest as test, rootfs } from './_helpers.js';

/** The first line a stream prints. */
function firstLine(stream: Readable | null): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream!.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
    stream!.on('error', reject);
    stream!.on('end', () => resolve(text));
  });
}

test('exec shares pid 1, hostname, mounts and network with its container', async (t) => {
  await using c = await Container.run({
    rootfs: rootfs(),
    command: ['/bin/sh', '-c', 'echo ready; exec sleep 100'],
    hostname: 'exec-box',
    mounts: [{ type: 'tmpfs', target: '/shared' }],
  });
  const inside = (pid: string) => `for n in mnt net uts pid ipc; do readlink /proc/${pid}/ns/$n; done`;
  const p = await c.exec(['/bin/sh', '-c', `cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; ${inside('1')}; ${inside('self')}; grep -c /shared /proc/self/mountinfo; echo $$`]);
  const [out, status] = await Promise.all([collect(p.stdout), p.wait()]);
  t.deepEqual(status, { exitCode: 0, signal: null });
  const lines = out.trim().split('\n');
  t.is(lines[0]!.trim(), 'sleep 100');
  t.is(lines[1], 'exec-box');
  t.deepEqual(lines.slice(2, 7), lines.slice(7, 12), 'same namespaces as PID 1');
  t.is(lines[12], '1');
  t.true(Number(lines[13]) > 1, 'a new pid in the container pid namespace');
  t.true(p.pid !== c.pid);
});

test('exec with its own env, cwd, user, stdin and exit code', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], env: { A: '1' }, stdio: 'ignore' });
  const p = await c.exec(['/bin/sh', '-c', 'read x; echo "$A $B $x $(pwd) $(id -u)"; exit 5'], { env: { B: '2' }, cwd: '/tmp', user: 1000 });
  p.stdin!.end('in\n');
  const [out, status] = await Promise.all([collect(p.stdout), p.wait()]);
  t.is(out, '1 2 in /tmp 1000\n');
  t.deepEqual(status, { exitCode: 5, signal: null });
});

test('exec with a tty', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  const p = await c.exec(['/bin/sh', '-c', 'test -t 0 && stty size'], { tty: { cols: 90, rows: 20 } });
  const [out, status] = await Promise.all([collect(p.stdout), p.wait()]);
  t.is(status.exitCode, 0);
  t.regex(out, /20 90/);
});

test('exec of a missing program fails with execve ENOENT', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  const e = await t.throwsAsync(c.exec(['/bin/nope']));
  t.regex(e!.message, /^execve \/bin\/nope: ENOENT/);
});

test('exec needs a running container', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/true'], stdio: 'ignore' });
  await c.wait();
  await t.throwsAsync(c.exec(['/bin/true']), { instanceOf: InvalidStateError });
});

test('exec into a paused container fails as docker\'s, both ways a container runs; after unpause it works', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  await c.pause();
  // A process placed in the frozen cgroup would freeze before its execve and exec wait for it for
  // ever: after 10 s the container is thawed (its frozen child then runs) and the exec fails.
  const bounded = <T>(p: Promise<T>) => {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => void c.resume().finally(() => reject(new Error('exec waited on the frozen container'))), 10_000);
    });
    return Promise.race([p, hung]).finally(() => clearTimeout(timer));
  };
  const paused = new RegExp(`^Container ${c.id} is paused, unpause the container before exec$`);
  await t.throwsAsync(bounded(c.exec(['/bin/true'], { stdio: 'ignore' })), { instanceOf: InvalidStateError, message: paused });
  await using j = await Container.join({ rootfs: rootfs(), command: ['/bin/sleep', '100'] }, { id: c.id, pid: c.pid!, cgroupPaths: c.cgroup!.paths });
  await t.throwsAsync(bounded(j.exec(['/bin/true'], { stdio: 'ignore' })), { instanceOf: InvalidStateError, message: paused }, 'a handle: paused by another');
  await c.resume();
  const p = await j.exec(['/bin/true'], { stdio: 'ignore' });
  t.deepEqual(await p.wait(), { exitCode: 0, signal: null });
});

test('exec processes die with the container', async (t) => {
  const c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  t.teardown(() => c.remove());
  const p = await c.exec(['/bin/sleep', '100'], { stdio: 'ignore' });
  c.kill('SIGKILL');
  t.deepEqual(await p.wait(), { exitCode: null, signal: 'SIGKILL' });
  await c.remove();
});

// A container at its pids limit: the shell and three sleeps fill `pids: 4`. An exec is one more
// process, so the kernel must refuse it (EAGAIN from its fork inside the cgroup), whichever way the
// container runs; joining the cgroup by writing cgroup.procs would not be refused (issue #14).
const FULL = ['/bin/sh', '-c', 'sleep 1000 & sleep 1000 & sleep 1000 & echo ready; wait'];
const LIMIT = 4;

async function pidsCurrent(c: { stats(): Promise<CgroupStats> }): Promise<number> {
  return (await c.stats()).pids!.current;
}

test('exec in a container at its pids limit fails with a pids.max error, and the limit holds', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: FULL, resources: { pids: LIMIT } });
  t.is((await firstLine(c.stdout)), 'ready');
  t.is(await pidsCurrent(c), LIMIT);
  for (let i = 0; i < 5; i++) {
    const e = await t.throwsAsync(c.exec(['/bin/sleep', '1000'], { stdio: 'ignore' }), { instanceOf: NsboxError });
    t.is(e!.code, 'EAGAIN');
    t.regex(e!.message, /pids limit.*pids\.max = 4/);
    t.true((await pidsCurrent(c)) <= LIMIT, 'pids.current never above pids.max');
  }
  t.is(await pidsCurrent(c), LIMIT);
});

test('exec through the Engine (nsbox exec) at the pids limit fails the same way', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-exec-pids-'));
  const engine = await Engine.open({ root });
  t.teardown(async () => {
    for (const r of await engine.list({ all: true })) await engine.remove(r.id, { force: true });
    rmSync(root, { recursive: true, force: true });
  });
  const r = await engine.create({ options: { rootfs: rootfs(), command: FULL, resources: { pids: LIMIT } } });
  await engine.start(r.id);
  const stop = new AbortController();
  for await (const entry of engine.logs(r.id, { follow: true, signal: stop.signal })) if (entry.log === 'ready\n') break;
  stop.abort();
  t.is((await engine.stats(r.id)).pids!.current, LIMIT);
  for (let i = 0; i < 5; i++) {
    const e = await t.throwsAsync(engine.exec(r.id, ['/bin/sleep', '1000']), { instanceOf: NsboxError });
    t.regex(e!.message, /pids limit.*pids\.max = 4/);
    t.true((await engine.stats(r.id)).pids!.current <= LIMIT);
  }
  t.is((await engine.stats(r.id)).pids!.current, LIMIT);
});

test('exec below the pids limit still starts, and counts against it', async (t) => {
  // Room for two: the exec'd process, and its first child for the moment it forks it inside the cgroup.
  await using c = await Container.run({ rootfs: rootfs(), command: FULL, resources: { pids: LIMIT + 2 } });
  t.is(await firstLine(c.stdout), 'ready');
  const p = await c.exec(['/bin/sleep', '1000'], { stdio: 'ignore' });
  t.is(await pidsCurrent(c), LIMIT + 1);
  p.kill('SIGKILL');
  await p.wait();
});
