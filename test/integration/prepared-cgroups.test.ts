/**
 * Cgroups made ahead of a start (lib/engine/prepared-cgroups.ts, as `nsbox serve` does between a
 * create and its start): the start runs the container in the cgroup made for it; a removal of a
 * container never started, or the end of keepCgroupsAhead, leaves none of them; a record changed
 * since (a rename) is started in a cgroup of its own start, as without them.
 */
import { existsSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Cgroup, type ContainerRecord } from '../../lib/index.js';
import { engineFixture, type EngineCtx } from './engine-fixture.js';
import { until } from './shim-fixture.js';

const { rtest } = engineFixture('nsbox-prepared-');

const cgroupJson = (root: string, id: string) => join(root, 'containers', id, 'shim', 'cgroup.json');
/** The cgroup directories cgroup.json names, once it is written (by the cgroup made ahead). */
async function madeAhead(root: string, id: string): Promise<string[]> {
  await until('the cgroup made ahead', () => existsSync(cgroupJson(root, id)));
  return Object.values(JSON.parse(readFileSync(cgroupJson(root, id), 'utf8')) as Record<string, string>);
}
/** A container created, and its cgroup made ahead of its start: the directories cgroup.json names. */
async function createdAhead(ctx: EngineCtx, command: string[]): Promise<{ r: ContainerRecord; dirs: string[] }> {
  const r = await ctx.engine.create({ options: { image: ctx.image, command } });
  ctx.engine.prepareStart(r);
  return { r, dirs: await madeAhead(ctx.root, r.id) };
}
const holds = (dir: string, pid: number) => readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').includes(String(pid));
const ownCgroups = (pid: number, id: string) => readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter((l) => l.includes(id)).length;

rtest('a start runs the container in the cgroup made ahead for it; its removal leaves none', async (t) => {
  const { engine } = t.context;
  const stop = engine.keepCgroupsAhead();
  t.teardown(stop);
  const { r, dirs } = await createdAhead(t.context, ['sleep', '1000']);
  t.true(dirs.length > 0 && dirs.every((d) => existsSync(d)), 'made before the start');
  const inodes = dirs.map((d) => statSync(d).ino);
  const started = await engine.start(r.id);
  t.deepEqual(dirs.map((d) => statSync(d).ino), inodes, 'the very directories made ahead (not removed and made again)');
  const pid = engine.pidOf(started)!;
  t.true(ownCgroups(pid, r.id) > 0, 'the container runs in its own cgroups');
  for (const d of dirs) t.true(holds(d, pid), `in ${d}`);
  await engine.remove(r.id, { force: true });
  t.true(dirs.every((d) => !existsSync(d)), 'removed with the container');
});

rtest('a container created and removed without a start leaves no cgroup made ahead', async (t) => {
  const { engine, image, root } = t.context;
  const stop = engine.keepCgroupsAhead();
  t.teardown(stop);
  const { r, dirs } = await createdAhead(t.context, ['true']);
  t.true(dirs.every((d) => existsSync(d)));
  await engine.remove(r.id);
  t.true(dirs.every((d) => !existsSync(d)));

  // Removed while its cgroup is being made: the removal waits for it, then removes it.
  const q = await engine.create({ options: { image, command: ['true'] } });
  engine.prepareStart(q);
  await engine.remove(q.id);
  t.false(existsSync(join(root, 'containers', q.id)));
  await t.throwsAsync(Cgroup.open(q.id), undefined, 'no cgroup of its name is left');
});

rtest('the end of keepCgroupsAhead removes the cgroups made for containers never started; a changed record starts in its own', async (t) => {
  const { engine, root } = t.context;
  const stop = engine.keepCgroupsAhead();
  const { r: kept, dirs } = await createdAhead(t.context, ['true']);
  await stop();
  t.true(dirs.every((d) => !existsSync(d)), 'removed at the end');
  t.false(existsSync(cgroupJson(root, kept.id)), 'and cgroup.json with them');
  t.is((await engine.get(kept.id)).state, 'created', 'the container stays, as created');
  await engine.remove(kept.id);

  const stop2 = engine.keepCgroupsAhead();
  t.teardown(stop2);
  const { r, dirs: ahead } = await createdAhead(t.context, ['sleep', '1000']);
  const inodes = ahead.map((d) => statSync(d).ino);
  // Changed after its cgroup was made: the start does not take it, and makes its own as before.
  await engine.rename(r.id, `renamed-${r.id.slice(0, 8)}`);
  const started = await engine.start(r.id);
  const pid = engine.pidOf(started)!;
  t.true(ownCgroups(pid, r.id) > 0);
  const now = Object.values(JSON.parse(readFileSync(cgroupJson(root, r.id), 'utf8')) as Record<string, string>);
  for (const d of now) t.true(holds(d, pid), `in ${d}`);
  t.notDeepEqual(now.map((d) => statSync(d).ino), inodes, 'made by the start, not the ones made ahead');
  await engine.remove(r.id, { force: true });
  t.true(now.every((d) => !existsSync(d)));
});

rtest('a cgroup made ahead and removed since (a prune of empty cgroups) is made again by the start', async (t) => {
  const { engine } = t.context;
  const stop = engine.keepCgroupsAhead();
  t.teardown(stop);
  const { r, dirs } = await createdAhead(t.context, ['sleep', '1000']);
  for (const d of dirs) rmdirSync(d);
  const started = await engine.start(r.id);
  const pid = engine.pidOf(started)!;
  for (const d of dirs) t.true(holds(d, pid), `in ${d}`);
  await engine.remove(r.id, { force: true });
  t.true(dirs.every((d) => !existsSync(d)));
});
