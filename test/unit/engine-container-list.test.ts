/**
 * `nsbox ps`'s read of the store (readContainerList): the same containers, fields and order as
 * ContainerStore.list while every record is in order, and `undefined` (ask the engine) for what
 * only the engine does: a correction to write back, a killed `run -d` to adopt, a record that does
 * not read.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { readContainerList } from '../../lib/engine/container-list.js';
import { ContainerStore, processStartTime, type ContainerRecord } from '../../lib/engine/index.js';

function tempRoot(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsbox-list-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const digest = `sha256:${'d'.repeat(64)}`;
const fields = (r: ContainerRecord) => {
  const { id, name, image, rootfs, entrypoint, command, created, startedAt, finishedAt, state, exitCode, signal } = r;
  return { id, name, image, rootfs, entrypoint, command, created, startedAt, finishedAt, state, exitCode, signal };
};

async function storeWithEveryState(root: string): Promise<ContainerStore> {
  let t = Date.parse('2026-01-01T00:00:00Z');
  const store = await ContainerStore.open({ root, now: () => new Date((t += 1000)) });
  const pidStartTime = (await processStartTime(process.pid))!;
  const live = { kind: 'process' as const, pid: process.pid, pidStartTime };
  const image = { ref: 'docker.io/library/busybox:latest', digest };
  await store.create({ name: 'made', image, command: ['true'] });
  await store.create({ name: 'up', image, entrypoint: ['/bin/sh', '-c'], command: ['sleep 1'], state: 'running', startedAt: '2026-01-01T00:00:00.000Z', supervisor: live });
  await store.create({ name: 'frozen', rootfs: '/srv/rootfs', command: ['top'], state: 'paused', startedAt: '2026-01-01T00:00:00.000Z', supervisor: live });
  await store.create({ name: 'done', image, command: ['false'], state: 'exited', exitCode: 1, finishedAt: '2026-01-01T00:00:05.000Z' });
  await store.create({ name: 'killed', image, command: ['sleep', '9'], state: 'exited', signal: 'SIGKILL', finishedAt: '2026-01-01T00:00:06.000Z' });
  await store.create({ name: 'gone', image, command: ['x'], state: 'dead', error: 'lost' });
  return store;
}

test('running, paused, exited, dead and created containers read as ContainerStore.list reads them', async (t) => {
  const root = tempRoot(t);
  const store = await storeWithEveryState(root);
  for (const all of [false, true]) {
    const light = await readContainerList({ root, all });
    t.truthy(light);
    t.deepEqual(light!.map((r) => fields(r as ContainerRecord)), (await store.list({ all })).map(fields));
  }
  t.deepEqual((await readContainerList({ root }))!.map((r) => r.name).sort(), ['frozen', 'up']);
});

test('a store not made yet lists nothing', async (t) => {
  t.deepEqual(await readContainerList({ root: path.join(tempRoot(t), 'none') }), []);
});

test('a running record whose process is gone is left to the engine, which writes its correction', async (t) => {
  const root = tempRoot(t);
  const store = await storeWithEveryState(root);
  // A pid that is this process's, but with another start time: a reused pid, so the container is gone.
  const pidStartTime = (await processStartTime(process.pid))! + 1;
  await store.create({ name: 'stale', rootfs: '/srv/rootfs', state: 'running', supervisor: { kind: 'process', pid: process.pid, pidStartTime } });
  t.is(await readContainerList({ root, all: true }), undefined);
  const listed = await store.list({ all: true });
  t.is(listed.find((r) => r.name === 'stale')?.state, 'dead');
  t.deepEqual((await readContainerList({ root, all: true }))!.map((r) => fields(r as ContainerRecord)), listed.map(fields));
});

test('a created record with a shim running in its bundle is left to the engine, which adopts it', async (t) => {
  const root = tempRoot(t);
  const store = await storeWithEveryState(root);
  const r = await store.create({ name: 'orphan', rootfs: '/srv/rootfs' });
  mkdirSync(path.join(store.layout.container(r.id), 'shim'), { recursive: true });
  writeFileSync(path.join(store.layout.container(r.id), 'shim', 'shim.pid'), `${process.pid}\n`);
  t.is(await readContainerList({ root }), undefined);
});

test('a record that does not read is left to the engine, which names it', async (t) => {
  const root = tempRoot(t);
  const store = await storeWithEveryState(root);
  const r = await store.create({ name: 'broken', rootfs: '/srv/rootfs' });
  writeFileSync(store.recordFile(r.id), '{"id": "nope"}');
  t.is(await readContainerList({ root }), undefined);
  await t.throwsAsync(store.list(), { message: /not a valid nsbox record/ });
});
