import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, type PathLike } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { KEEP_MS, removedExit, sweepExits } from '../../lib/engine/removed-exits.js';
import {
  ConflictError,
  ContainerRecordSchema,
  ContainerStore,
  newContainerId,
  mountsUnder,
  processStartTime,
  type ContainerRecord,
} from '../../lib/engine/index.js';
import { InvalidStateError, NotFoundError, ValidationError } from '../../lib/errors.js';

function tempRoot(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsbox-engine-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A clock that moves one second per call, so creation order is visible. */
function steppingClock(start = Date.parse('2026-01-01T00:00:00Z')) {
  let t = start;
  return () => new Date((t += 1000));
}

const digest = `sha256:${'d'.repeat(64)}`;

test('a full record round-trips through record.json; options are kept as given', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const pidStartTime = (await processStartTime(process.pid))!;
  const input = {
    name: '/web',
    image: { ref: 'docker.io/library/busybox:latest', digest },
    entrypoint: ['/bin/sh', '-c'],
    command: ['echo hi'],
    startedAt: '2026-01-02T03:04:05.000Z',
    state: 'running' as const,
    restartCount: 2,
    restartPolicy: { name: 'on-failure' as const, maximumRetryCount: 3 },
    options: { image: 'busybox', command: ['echo', 'hi'], resources: { memory: '512m' }, env: { A: '1' }, tty: true },
    supervisor: { kind: 'process' as const, pid: process.pid, pidStartTime },
  };
  const created = await store.create(input);
  t.regex(created.id, /^[0-9a-f]{64}$/);
  t.is(created.name, 'web');
  t.false(Number.isNaN(Date.parse(created.created)));
  t.is(created.exitCode, null);
  t.is(created.signal, null);
  t.false(created.oomKilled);
  // Kept as given, not as the runtime's parsed form ('512m' stays a string, defaults not filled in).
  t.deepEqual(created.options, input.options);

  const onDisk = JSON.parse(readFileSync(store.recordFile(created.id), 'utf8'));
  t.deepEqual(ContainerRecordSchema.parse(onDisk), created);
  t.deepEqual(await store.get(created.id), created);
  t.deepEqual(JSON.parse(readFileSync(store.namesFile, 'utf8')), { version: 1, names: { web: created.id } });
});

test('records are validated on write and again on read (options included)', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  await t.throwsAsync(store.create({ options: { memory: 1 } as never }), { instanceOf: ValidationError, message: /options/ });
  await t.throwsAsync(store.create({ id: 'xyz' }), { instanceOf: ValidationError, message: /id: must be 64/ });
  await t.throwsAsync(store.create({ image: { ref: 'a', digest }, rootfs: '/r' }), { instanceOf: ValidationError, message: /not both/ });
  await t.throwsAsync(store.create({ state: 'zombie' as never }), { instanceOf: ValidationError });
  await t.throwsAsync(store.create({ name: 'no spaces' }), { instanceOf: ValidationError, message: /Invalid container name \(no spaces\)/ });

  const r = await store.create({ name: 'edited', options: { rootfs: '/srv/root' } });
  const file = store.recordFile(r.id);
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace('"/srv/root"', '"relative/root"'));
  await t.throwsAsync(store.get('edited'), { code: 'ERR_STORE_CORRUPT', message: /options\.rootfs.*absolute path/ });
  writeFileSync(file, '{"id": "trunc');
  await t.throwsAsync(store.get(r.id), { code: 'ERR_STORE_CORRUPT' });
});

test('lookup as docker: full id, name with or without "/", unique id prefix; ambiguity and misses are clear', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const a = await store.create({ id: `ab${'0'.repeat(62)}`, name: 'alpha' });
  const b = await store.create({ id: `ab${'1'.repeat(62)}`, name: 'beta' });
  // A name that looks like the other's id prefix: the name wins, as in docker.
  const c = await store.create({ id: `cd${'2'.repeat(62)}`, name: 'ab1' });
  t.is((await store.get(a.id)).name, 'alpha');
  t.is((await store.get('alpha')).id, a.id);
  t.is((await store.get('/beta')).id, b.id);
  t.is((await store.get('ab0')).id, a.id);
  t.is((await store.get(b.id.slice(0, 12))).id, b.id);
  t.is((await store.get('ab1')).id, c.id);
  t.is((await store.get('c')).id, c.id);
  const amb = await t.throwsAsync(store.get('ab'), { instanceOf: ValidationError });
  t.is(amb.message, 'multiple IDs found with provided prefix: ab');
  const miss = await t.throwsAsync(store.get('web'), { instanceOf: NotFoundError });
  t.is(miss.message, 'No such container: web');
  await t.throwsAsync(store.get('ef'), { instanceOf: NotFoundError });
  await t.throwsAsync(store.get(''), { instanceOf: NotFoundError });
  await t.throwsAsync(store.get('../..'), { instanceOf: NotFoundError });
});

test('peekById: the full id alone, as a watcher of one container asks; NotFoundError once its record is gone; no correction written', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const a = await store.create({ id: `ab${'0'.repeat(62)}`, name: 'alpha' });
  t.deepEqual(await store.peekById(a.id), await store.get(a.id));
  await t.throwsAsync(store.peekById('alpha'), { instanceOf: NotFoundError });
  await t.throwsAsync(store.peekById('ab0'), { instanceOf: NotFoundError });
  // A container named with a's id: get falls through to that name once a is gone, peekById does not.
  const b = await store.create({ name: a.id });
  await store.remove(a.id);
  t.is((await store.get(a.id)).id, b.id);
  await t.throwsAsync(store.peekById(a.id), { instanceOf: NotFoundError, message: `No such container: ${a.id}` });
  // An update without the directory's fsync writes the same record.
  const u = await store.update(b.id, (r) => {
    r.exitCode = 7;
  }, { syncDir: false });
  t.deepEqual(await store.peekById(b.id), u);
  t.is(u.exitCode, 7);
  // A running record whose process is gone: seen exited, the file left as it is (get writes it back).
  const pidStartTime = (await processStartTime(process.pid))!;
  const stale = await store.create({ name: 'stale', state: 'running', supervisor: { kind: 'process', pid: process.pid, pidStartTime: pidStartTime + 1 } });
  t.not((await store.peekById(stale.id)).state, 'running');
  t.is(JSON.parse(readFileSync(store.recordFile(stale.id), 'utf8')).state, 'running');
  t.not((await store.get(stale.id)).state, 'running');
  t.not(JSON.parse(readFileSync(store.recordFile(stale.id), 'utf8')).state, 'running');
});

test('a taken name is a Conflict in docker\'s words; generated names are unique', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const web = await store.create({ name: 'web' });
  const err = await t.throwsAsync(store.create({ name: '/web' }), { instanceOf: ConflictError });
  t.is(
    err.message,
    `Conflict. The container name "/web" is already in use by container "${web.id}". You have to remove (or rename) that container to be able to reuse that name.`,
  );
  t.is(err.code, 'ERR_CONFLICT');
  t.is(err.containerId, web.id);
  await t.throwsAsync(store.create({ id: web.id, name: 'other' }), { instanceOf: InvalidStateError });
  const names = new Set<string>();
  for (let i = 0; i < 20; i++) names.add((await store.create({})).name);
  t.is(names.size, 20);
  for (const n of names) t.regex(n, /^[a-z]+_[a-z]+\d*$/);
});

test('list: running and paused by default, all with { all }, newest first', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t), now: steppingClock() });
  const pidStartTime = (await processStartTime(process.pid))!;
  const sup = { kind: 'process' as const, pid: process.pid, pidStartTime };
  const c1 = await store.create({ name: 'one' });
  const c2 = await store.create({ name: 'two', state: 'running', supervisor: sup });
  const c3 = await store.create({ name: 'three', state: 'exited', exitCode: 0 });
  const c4 = await store.create({ name: 'four', state: 'paused', supervisor: sup });
  t.deepEqual((await store.list()).map((r) => r.name), ['four', 'two']);
  t.deepEqual((await store.list({ all: true })).map((r) => r.id), [c4.id, c3.id, c2.id, c1.id]);
  t.deepEqual(await new ContainerStore({ root: path.join(tempRoot(t), 'none') }).list({ all: true }), []);
});

test('update: read-modify-write; the id is fixed; a rename keeps names unique', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const web = await store.create({ name: 'web' });
  const db = await store.create({ name: 'db' });
  const started = await store.update('web', (r) => {
    r.state = 'exited';
    r.exitCode = 3;
    r.restartCount++;
  });
  t.is(started.exitCode, 3);
  t.is(started.restartCount, 1);
  t.deepEqual(await store.get(web.id), started);
  const back = await store.update(web.id.slice(0, 5), async (r): Promise<ContainerRecord> => ({ ...r, exitCode: 4 }));
  t.is(back.exitCode, 4);
  await t.throwsAsync(store.update('web', (r) => ({ ...r, id: newContainerId() })), { instanceOf: ValidationError, message: /id cannot change/ });
  await t.throwsAsync(store.update('web', (r) => ({ ...r, exitCode: 1.5 })), { instanceOf: ValidationError, message: /exitCode/ });
  t.is((await store.get('web')).exitCode, 4);

  await t.throwsAsync(store.rename('web', 'db'), { instanceOf: ConflictError, message: new RegExp(db.id) });
  const renamed = await store.rename('web', '/site');
  t.is(renamed.name, 'site');
  t.is((await store.get('site')).id, web.id);
  await t.throwsAsync(store.get('web'), { instanceOf: NotFoundError });
  t.deepEqual(JSON.parse(readFileSync(store.namesFile, 'utf8')).names, { db: db.id, site: web.id });
  const again = await store.create({ name: 'web' });
  t.not(again.id, web.id);
  await t.throwsAsync(store.update('nothing', () => {}), { instanceOf: NotFoundError });
});

test('remove: refused while running unless forced; frees the name and the directory', async (t) => {
  const root = tempRoot(t);
  const store = await ContainerStore.open({ root });
  const pidStartTime = (await processStartTime(process.pid))!;
  const run = await store.create({ name: 'run', state: 'running', supervisor: { kind: 'process', pid: process.pid, pidStartTime } });
  const done = await store.create({ name: 'done', state: 'exited', exitCode: 0 });
  mkdirSync(path.join(store.layout.container(done.id), 'upper'));
  const err = await t.throwsAsync(store.remove('run'), { instanceOf: InvalidStateError });
  t.is(err.message, `You cannot remove a running container ${run.id}. Stop the container before attempting removal or force remove`);
  t.is((await store.remove('done')).id, done.id);
  t.is((await store.remove('run', { force: true })).id, run.id);
  // Beside the lock and the index: the exits the removals left for waiters (removed-exits.ts).
  t.deepEqual(readdirSync(store.layout.containersDir).sort(), ['.removed', 'containers.lock', 'names.json']);
  t.like(await removedExit(store.layout.containersDir, done.id), { state: 'exited', exitCode: 0 });
  t.like(await removedExit(store.layout.containersDir, run.id), { state: 'running' });
  t.is(await removedExit(store.layout.containersDir, 'f'.repeat(64)), undefined);
  await sweepExits(store.layout.containersDir, Date.now() + KEEP_MS + 1);
  t.deepEqual(readdirSync(path.join(store.layout.containersDir, '.removed')), [], 'swept once older than KEEP_MS');
  t.deepEqual(JSON.parse(readFileSync(store.namesFile, 'utf8')).names, {});
  await t.throwsAsync(store.remove('done'), { instanceOf: NotFoundError, message: 'No such container: done' });
  t.truthy(await store.create({ name: 'run' }));
});

test('repair: temp files, directories without a record and stale index entries left by a crash', async (t) => {
  const root = tempRoot(t);
  const store = await ContainerStore.open({ root });
  const kept = await store.create({ name: 'kept' });
  const dir = store.layout.containersDir;
  const ghost = newContainerId();
  const half = newContainerId();
  // A create cut after the index write, and a remove cut after the record's deletion.
  writeFileSync(store.namesFile, JSON.stringify({ version: 1, names: { kept: kept.id, ghost, half } }));
  mkdirSync(path.join(dir, half, 'upper'), { recursive: true });
  writeFileSync(path.join(dir, '.names.json.tmp-0123456789ab'), '{"ver');
  writeFileSync(path.join(dir, kept.id, '.record.json.tmp-0123456789ab'), '{"id');
  // Stale entries do not hold their names, even before repair.
  t.truthy(await store.create({ name: 'ghost' }));
  t.true(await store.repair());
  t.deepEqual(readdirSync(path.join(dir, kept.id)), ['record.json']);
  t.false(readdirSync(dir).includes(half));
  t.false(readdirSync(dir).some((f) => f.includes('.tmp-')));
  const names = JSON.parse(readFileSync(store.namesFile, 'utf8')).names;
  t.deepEqual(Object.keys(names).sort(), ['ghost', 'kept']);
  t.truthy(await store.create({ name: 'half' }));
});

test('a create is written as a group (both files staged and fsynced, then renamed): a kill -9 at each cut leaves no container and a free name', async (t) => {
  const root = tempRoot(t);
  const store = await ContainerStore.open({ root });
  const kept = await store.create({ name: 'kept' });
  const dir = store.layout.containersDir;
  t.deepEqual(readdirSync(path.join(dir, kept.id)), ['record.json'], 'a create leaves its record and no temp file');
  t.false(readdirSync(dir).some((f) => f.includes('.tmp-')));
  const index = (names: Record<string, string>) => JSON.stringify({ version: 1, names });
  // Cut 1: both temp files written, nothing renamed. Cut 2: the index renamed, the record not.
  const staged = newContainerId();
  mkdirSync(path.join(dir, staged));
  writeFileSync(path.join(dir, '.names.json.tmp-00000000000a'), index({ kept: kept.id, staged }));
  writeFileSync(path.join(dir, staged, '.record.json.tmp-00000000000a'), '{"id":"whole but not renamed"}');
  const indexed = newContainerId();
  mkdirSync(path.join(dir, indexed));
  writeFileSync(store.namesFile, index({ kept: kept.id, indexed }));
  writeFileSync(path.join(dir, indexed, '.record.json.tmp-00000000000b'), '{"id":"whole but not renamed"}');
  // Before any repair (the CLI does none): neither exists, and both names can be taken.
  await t.throwsAsync(store.get('staged'), { instanceOf: NotFoundError });
  await t.throwsAsync(store.get('indexed'), { instanceOf: NotFoundError });
  t.deepEqual((await store.list({ all: true })).map((r) => r.name), ['kept']);
  const again = await store.create({ name: 'indexed' });
  t.not(again.id, indexed);
  t.true(await store.repair());
  t.false(readdirSync(dir).includes(staged));
  t.false(readdirSync(dir).includes(indexed));
  t.false(readdirSync(dir).some((f) => f.includes('.tmp-')));
  t.deepEqual(JSON.parse(readFileSync(store.namesFile, 'utf8')).names, { kept: kept.id, indexed: again.id });
  t.truthy(await store.create({ name: 'staged' }));
});

test('remove never descends into a mount left in the container directory', async (t) => {
  const root = tempRoot(t);
  const proc = path.join(tempRoot(t), 'proc');
  mkdirSync(path.join(proc, 'self'), { recursive: true });
  const store = await ContainerStore.open({ root, proc });
  const done = await store.create({ name: 'done', state: 'exited', exitCode: 0 });
  const rootfs = path.join(store.layout.container(done.id), 'root fs');
  mkdirSync(rootfs);
  const line = (mp: string) => `36 35 0:32 / ${mp.replace(/ /g, '\\040')} rw,relatime shared:1 - overlay overlay rw\n`;
  writeFileSync(path.join(proc, 'self', 'mountinfo'), line('/') + line(rootfs) + line(`${store.layout.container(done.id)}x`));
  const err = await t.throwsAsync(store.remove('done', { force: true }), { instanceOf: InvalidStateError });
  t.is(err.message, `container ${done.id} cannot be removed while ${rootfs} is mounted: unmount it first`);
  t.is((await store.get('done')).id, done.id);
  writeFileSync(path.join(proc, 'self', 'mountinfo'), line('/') + line(`${store.layout.container(done.id)}x`));
  await store.remove('done');
  await t.throwsAsync(store.get('done'), { instanceOf: NotFoundError });
  // The real mount table: nothing is mounted in a fresh temp dir.
  t.deepEqual(await mountsUnder(root), []);
  t.true((await mountsUnder('/')).includes('/'));
});

test.serial('remove: the record goes without waiting for the index; an index that cannot be written leaves its entry, which counts for nothing, and the error says so', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const c = await store.create({ name: 'web', state: 'exited', exitCode: 0 });
  // The index's temp file cannot be made (EIO, as a failing disk): the record's rename does not wait for it.
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const open = fsp.open;
  fsp.open = ((file: PathLike, ...rest: unknown[]) =>
    String(file).includes('/.names.json.tmp-') ? Promise.reject(Object.assign(new Error(`EIO: i/o error, open '${String(file)}'`), { code: 'EIO' })) : (open as (...a: unknown[]) => unknown)(file, ...rest)) as typeof open;
  syncBuiltinESMExports();
  try {
    const e = await t.throwsAsync(store.remove('web'));
    t.regex(e.message, new RegExp(`container ${c.id} was removed, but dropping its name web from .*names\\.json failed`));
  } finally {
    fsp.open = open;
    syncBuiltinESMExports();
  }
  await t.throwsAsync(store.get('web'), { instanceOf: NotFoundError });
  await t.throwsAsync(store.peekById(c.id), { instanceOf: NotFoundError });
  t.is(JSON.parse(readFileSync(store.namesFile, 'utf8')).names.web, c.id, 'the stale entry is left');
  t.truthy(await store.create({ name: 'web' }), 'and the name is free');
});

test.serial('removeRecord: its waiters are told at the rename, before the index is committed; it resolves once the index is written and the lock is free', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const c = await store.create({ name: 'quick', state: 'exited', exitCode: 0 });
  // The index's temp file is held back until the waiter has been told: its commit comes after.
  let letIndexGo!: () => void;
  const indexHeld = new Promise<void>((resolve) => (letIndexGo = resolve));
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const open = fsp.open;
  fsp.open = ((file: PathLike, ...rest: unknown[]) =>
    String(file).includes('/.names.json.tmp-') ? indexHeld.then(() => (open as (...a: unknown[]) => Promise<unknown>)(file, ...rest)) : (open as (...a: unknown[]) => unknown)(file, ...rest)) as typeof open;
  syncBuiltinESMExports();
  try {
    const told = new Promise<void>((resolve) => store.onRemoved(c.id, resolve));
    let resolved = false;
    const removing = store.removeRecord('quick').then((r) => ((resolved = true), r));
    await told;
    await t.throwsAsync(store.peekById(c.id), { instanceOf: NotFoundError });
    t.is(JSON.parse(readFileSync(store.namesFile, 'utf8')).names.quick, c.id, 'the index is not written yet');
    t.false(resolved, 'nor has the removal resolved');
    letIndexGo();
    const { record, deleted } = await removing;
    t.is(record.id, c.id);
    t.is(JSON.parse(readFileSync(store.namesFile, 'utf8')).names.quick, undefined);
    // The lock is free the moment it resolves: a process started now (with this event loop blocked) takes it.
    t.is(spawnSync('flock', ['-n', store.lockFile, 'true']).status, 0);
    await deleted;
  } finally {
    letIndexGo();
    fsp.open = open;
    syncBuiltinESMExports();
  }
});

test('onRemoved: told of this process\'s removal of that container once its record is gone, before removeRecord resolves; not of others, nor after its stop', async (t) => {
  const store = await ContainerStore.open({ root: tempRoot(t) });
  const [a, b, c] = [await store.create({ name: 'one' }), await store.create({ name: 'two' }), await store.create({ name: 'three' })];
  const told: string[] = [];
  store.onRemoved(a.id, () => told.push(existsSync(store.recordFile(a.id)) ? 'a, record still there' : 'a'));
  const stop = store.onRemoved(b.id, () => told.push('b'));
  stop();
  let resolved = false;
  const removing = store.removeRecord('one').then((r) => ((resolved = true), r));
  // Told as soon as the removal yields after its rename, not at the end of its call.
  t.false(await new Promise<boolean>((resolve) => store.onRemoved(a.id, () => resolve(resolved))));
  await (await removing).deleted;
  await store.remove(b.id);
  await store.remove(c.id);
  t.deepEqual(told, ['a']);
});

test("commitStaged: a staged update whose temp file another process's repair deleted resolves undefined (the caller updates instead), the record untouched", async (t) => {
  const root = tempRoot(t);
  const store = await ContainerStore.open({ root });
  const created = await store.create({ name: 'staged', image: { ref: 'busybox', digest }, options: { image: 'busybox' } });
  const staged = await store.stageUpdate(created, (r) => {
    r.state = 'running';
  });
  // Another process's Engine.open: its repair deletes temp files it takes for a crash's leftovers.
  const other = await ContainerStore.open({ root });
  await other.repair();
  t.false(readdirSync(path.dirname(store.recordFile(created.id))).some((f) => f.includes('.tmp-')));
  t.is(await store.commitStaged(staged), undefined);
  t.is((await store.get(created.id)).state, 'created');
  t.is((await store.update(created.id, (r) => void (r.state = 'running'))).state, 'running');
});
