import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ContainerStore, processStartTime, processStat } from '../../lib/engine/index.js';
import { ShimExitSchema, type ShimExit } from '../../lib/runtime/bundle.js';
import { ShimEvents, startDetached } from '../../lib/runtime/shim.js';

function tempRoot(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsbox-engine-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const fixedNow = new Date('2026-03-04T05:06:07.000Z');
const onDisk = (store: ContainerStore, id: string) => JSON.parse(readFileSync(store.recordFile(id), 'utf8'));

/** A child that idles until killed; resolves once it is reaped. */
function idleChild(t: { teardown(fn: () => void): void }) {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { pid: child.pid!, kill: async () => (child.kill('SIGKILL'), exited) };
}

test('/proc/PID/stat: start time of a live process, undefined for a gone one', async (t) => {
  const st = await processStat(process.pid);
  t.truthy(st);
  t.true(st!.startTime > 0);
  t.is(await processStartTime(process.pid), st!.startTime);
  t.not(await processStartTime(process.ppid), undefined);
  t.is(await processStartTime(4194304), undefined);
});

test('a running record whose process died is corrected to dead on read, and written back', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t), now: () => fixedNow });
  const child = idleChild(t);
  const pidStartTime = (await processStartTime(child.pid))!;
  const rec = await store.create({ name: 'app', state: 'running', supervisor: { kind: 'process', pid: child.pid, pidStartTime } });
  t.is((await store.get('app')).state, 'running');
  await child.kill();
  const got = await store.get('app');
  t.is(got.state, 'dead');
  t.is(got.exitCode, null);
  t.is(got.finishedAt, fixedNow.toISOString());
  t.is(got.error, `process ${child.pid} is gone and left no exit status`);
  t.like(onDisk(store, rec.id), { state: 'dead', error: got.error });
  // Not running any more: left out of the default list.
  t.deepEqual(await store.list(), []);
});

test('a recycled pid (same pid, other start time) is not the container', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t), now: () => fixedNow });
  const real = (await processStartTime(process.pid))!;
  const mine = await store.create({ name: 'mine', state: 'running', supervisor: { kind: 'process', pid: process.pid, pidStartTime: real } });
  const other = await store.create({ name: 'other', state: 'paused', supervisor: { kind: 'process', pid: process.pid, pidStartTime: real + 1 } });
  t.deepEqual((await store.list()).map((r) => r.name), ['mine']);
  t.is((await store.get(mine.id)).state, 'running');
  t.like(await store.get(other.id), { state: 'dead', error: `process ${process.pid} is gone and left no exit status` });
  t.is(onDisk(store, other.id).state, 'dead');
  // A shim with a recorded start time is checked the same way.
  const bundle = path.join(tempRoot(t), 'bundle');
  const shim = await store.create({ state: 'running', supervisor: { kind: 'shim', pid: process.pid, bundle, pidStartTime: real + 1 } });
  t.is((await store.get(shim.id)).state, 'dead');
});

test('a shim-supervised container: done when its state says so or it is gone; exit.json gives the status', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t), now: () => fixedNow });
  const bundles = tempRoot(t);
  const bundle = (n: string) => {
    const dir = path.join(bundles, n);
    mkdirSync(dir);
    return dir;
  };
  // Files in the shape nsbox-shim writes them (the bundle's schemas; test/integration/shim-bundle.test.ts
  // reads what the real shim wrote, and test/integration/oom-killed.test.ts its oomKilled), nanosecond times included.
  const state = (dir: string, status: string, shimPid: number, restartCount = 0, startedAt: string | null = '2026-03-04T05:00:00.123456789Z') =>
    writeFileSync(path.join(dir, 'state.json'), `${JSON.stringify({ status, pid: status === 'running' ? 4242 : 0, shimPid, restartCount, startedAt })}\n`);
  const exit = (dir: string, e: Omit<ShimExit, 'oomKilled'>) =>
    writeFileSync(path.join(dir, 'exit.json'), `${JSON.stringify(ShimExitSchema.parse({ oomKilled: false, ...e }))}\n`);
  const running = { state: 'running' as const, startedAt: '2026-03-04T05:00:00.000Z' };
  const me = process.pid; // a live shim stands in: our own pid
  const gone = idleChild(t);
  await gone.kill();

  // Alive, running: nothing to correct, except the shim's restart count and latest start.
  const b1 = bundle('b1');
  const c1 = await store.create({ name: 'c1', ...running, supervisor: { kind: 'shim', pid: me, bundle: b1 } });
  t.deepEqual(await store.get('c1'), c1);
  state(b1, 'running', me);
  t.like(await store.get('c1'), { state: 'running', startedAt: '2026-03-04T05:00:00.123Z' });
  // Between restarts exit.json holds the last run's exit, but the container will run again.
  exit(b1, { exitCode: 1, signal: null, finishedAt: '2026-03-04T05:00:30.000000001Z' });
  state(b1, 'restarting', me, 1);
  t.like(await store.get('c1'), { state: 'running', restartCount: 1 });
  state(b1, 'running', me, 2, '2026-03-04T05:00:31Z');
  t.like(await store.get('c1'), { state: 'running', restartCount: 2, startedAt: '2026-03-04T05:00:31.000Z' });
  // The shim's state says done (it is about to exit): exited with exit.json's status.
  exit(b1, { exitCode: 3, signal: null, finishedAt: '2026-03-04T05:01:00.5Z' });
  state(b1, 'exited', me, 2);
  t.like(await store.get('c1'), { state: 'exited', exitCode: 3, signal: null, oomKilled: false, restartCount: 2, finishedAt: '2026-03-04T05:01:00.500Z' });
  t.like(onDisk(store, c1.id), { state: 'exited', exitCode: 3, restartCount: 2 });

  // The shim is gone after a signal death: still its status, as a real nsbox-shim wrote it (a
  // plain process on the host, no namespaces: no root needed).
  const b2 = bundle('b2');
  const started = await startDetached({ cloneFlags: 0, ops: [], argv: ['/bin/sh', '-c', 'kill -9 $$'], env: [], path: '/usr/bin:/bin', stdio: [-1, -1, -1] }, b2);
  await (await ShimEvents.connect(b2)).done;
  await store.create({ name: 'c2', ...running, supervisor: { kind: 'shim', pid: started.shimPid, bundle: b2 } });
  t.like(await store.get('c2'), { state: 'exited', exitCode: null, signal: 'SIGKILL', oomKilled: false });
  const b2b = bundle('b2b');
  exit(b2b, { exitCode: null, signal: 'SIGTERM', finishedAt: '2026-03-04T05:02:00Z' });
  state(b2b, 'stopped', gone.pid);
  await store.create({ name: 'c2b', ...running, supervisor: { kind: 'shim', pid: gone.pid, bundle: b2b } });
  t.like(await store.get('c2b'), { state: 'exited', signal: 'SIGTERM' });
  // A restart that could not start the container: the shim's reason is kept.
  const b2c = bundle('b2c');
  exit(b2c, { exitCode: 127, signal: null, finishedAt: '2026-03-04T05:02:00Z', error: 'execve /app: ENOENT' });
  await store.create({ name: 'c2c', ...running, supervisor: { kind: 'shim', pid: gone.pid, bundle: b2c } });
  t.like(await store.get('c2c'), { state: 'exited', exitCode: 127, error: 'execve /app: ENOENT' });

  // The shim is gone and left nothing: dead, saying so.
  const b3 = bundle('b3');
  await store.create({ name: 'c3', ...running, supervisor: { kind: 'shim', pid: gone.pid, bundle: b3 } });
  const e3 = await store.get('c3');
  t.like(e3, { state: 'dead', exitCode: null, finishedAt: fixedNow.toISOString() });
  t.regex(e3.error!, /nsbox-shim \(pid \d+\) is gone and left no exit status in .*b3\/exit\.json/);

  // A state.json of another shim (an earlier run in this bundle) says nothing about this one.
  const b4 = bundle('b4');
  state(b4, 'exited', me + 1);
  exit(b4, { exitCode: 0, signal: null, finishedAt: '2026-03-04T05:02:00Z' });
  await store.create({ name: 'c4', ...running, supervisor: { kind: 'shim', pid: me, bundle: b4 } });
  t.is((await store.get('c4')).state, 'running');
  // Done by its state but exit.json not there yet: wait for the shim rather than guess.
  const b4b = bundle('b4b');
  state(b4b, 'exited', me);
  await store.create({ name: 'c4b', ...running, supervisor: { kind: 'shim', pid: me, bundle: b4b } });
  t.is((await store.get('c4b')).state, 'running');

  // A garbled exit.json from a shim that is gone: dead, naming the file.
  const b5 = bundle('b5');
  writeFileSync(path.join(b5, 'exit.json'), '{"exitCo');
  await store.create({ name: 'c5', ...running, supervisor: { kind: 'shim', pid: gone.pid, bundle: b5 } });
  t.like(await store.get('c5'), { state: 'dead' });
  t.regex((await store.get('c5')).error!, /b5\/exit\.json is not a valid exit status/);

  // list and update see corrected records too.
  t.deepEqual((await store.list()).map((r) => r.name).sort(), ['c4', 'c4b']);
  const b6 = bundle('b6');
  await store.create({ name: 'c6', ...running, supervisor: { kind: 'shim', pid: gone.pid, bundle: b6 } });
  exit(b6, { exitCode: 1, signal: null, finishedAt: fixedNow.toISOString() });
  const seen = await store.update('c6', (r) => {
    t.is(r.state, 'exited');
    r.restartCount++;
  });
  t.like(seen, { state: 'exited', exitCode: 1, restartCount: 1, finishedAt: fixedNow.toISOString() });
});

test('records not claiming to run are left alone', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const created = await store.create({ name: 'fresh' });
  const exited = await store.create({ name: 'gone', state: 'exited', exitCode: 0, supervisor: { kind: 'process', pid: 4194304, pidStartTime: 1 } });
  t.deepEqual(await store.get('fresh'), created);
  t.deepEqual(await store.get('gone'), exited);
  const nosup = await store.create({ name: 'nosup', state: 'running' });
  t.like(await store.get(nosup.id), { state: 'dead', error: 'no supervisor was recorded for a running container' });
});
