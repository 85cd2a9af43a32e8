import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ContainerStore, processStartTime, processStat } from '../../lib/engine/index.js';

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

test('a shim-supervised container: exit.json gives the exit status; a shim gone without one means dead', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t), now: () => fixedNow });
  const bundles = tempRoot(t);
  const bundle = (n: string) => {
    const dir = path.join(bundles, n);
    mkdirSync(dir);
    return dir;
  };
  const startedAt = '2026-03-04T05:00:00.000Z';
  const running = { state: 'running' as const, startedAt };

  // The shim (alive: our own pid stands in) has no exit.json yet: still running.
  const b1 = bundle('b1');
  const c1 = await store.create({ name: 'c1', ...running, supervisor: { kind: 'shim', pid: process.pid, bundle: b1 } });
  t.is((await store.get('c1')).state, 'running');
  writeFileSync(path.join(b1, 'exit.json'), JSON.stringify({ exitCode: 3, signal: null, finishedAt: '2026-03-04T05:01:00Z' }));
  const e1 = await store.get('c1');
  t.like(e1, { state: 'exited', exitCode: 3, signal: null, oomKilled: false, finishedAt: '2026-03-04T05:01:00.000Z' });
  t.like(onDisk(store, c1.id), { state: 'exited', exitCode: 3 });

  // The shim has exited too, after writing a signal death (as a number): still its status.
  const dead = idleChild(t);
  await dead.kill();
  const b2 = bundle('b2');
  writeFileSync(path.join(b2, 'exit.json'), JSON.stringify({ exitCode: null, signal: 9, finishedAt: '2026-03-04T05:02:00Z', oomKilled: true }));
  await store.create({ name: 'c2', ...running, supervisor: { kind: 'shim', pid: dead.pid, bundle: b2 } });
  t.like(await store.get('c2'), { state: 'exited', exitCode: null, signal: 'SIGKILL', oomKilled: true });

  // The shim is gone and left nothing: dead, saying so.
  const b3 = bundle('b3');
  await store.create({ name: 'c3', ...running, supervisor: { kind: 'shim', pid: dead.pid, bundle: b3 } });
  const e3 = await store.get('c3');
  t.like(e3, { state: 'dead', exitCode: null, finishedAt: fixedNow.toISOString() });
  t.regex(e3.error!, /nsbox-shim \(pid \d+\) is gone and left no exit status in .*b3\/exit\.json/);

  // An exit.json older than this start is a previous run's: the container still runs.
  const b4 = bundle('b4');
  writeFileSync(path.join(b4, 'exit.json'), JSON.stringify({ exitCode: 0, finishedAt: '2026-03-04T04:00:00Z' }));
  await store.create({ name: 'c4', ...running, supervisor: { kind: 'shim', pid: process.pid, bundle: b4 } });
  t.is((await store.get('c4')).state, 'running');

  // A garbled exit.json from a shim that is gone: dead, naming the file.
  const b5 = bundle('b5');
  writeFileSync(path.join(b5, 'exit.json'), '{"exitCo');
  await store.create({ name: 'c5', ...running, supervisor: { kind: 'shim', pid: dead.pid, bundle: b5 } });
  t.like(await store.get('c5'), { state: 'dead' });
  t.regex((await store.get('c5')).error!, /b5\/exit\.json is not a valid exit status/);

  // list and update see corrected records too.
  t.deepEqual((await store.list()).map((r) => r.name), ['c4']);
  const b6 = bundle('b6');
  await store.create({ name: 'c6', ...running, supervisor: { kind: 'shim', pid: process.pid, bundle: b6 } });
  writeFileSync(path.join(b6, 'exit.json'), JSON.stringify({ exitCode: 1 }));
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
