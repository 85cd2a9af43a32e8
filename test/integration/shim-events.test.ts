/**
 * events.sock against the real nsbox-shim: start, exit, restart and OOM events as they happen,
 * without taking attach's early replay, and a clean end (from the bundle's files) when the shim is
 * gone. Each container waits for a line on stdin before it goes on, so no event can come before
 * the test listens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from '../../lib/runtime/container.js';
import type { ShimEvent } from '../../lib/runtime/bundle.js';
import { AttachConnection, ShimEvents, startDetached } from '../../lib/runtime/shim.js';
import { collect, rootTest as test, rootfs } from './_helpers.js';
import { alive, bundle, planFor, until } from './shim-fixture.js';

/** Collects a stream's events; `next(type)` resolves with the next one of that type not taken yet. */
function recorder(events: ShimEvents) {
  const seen: ShimEvent[] = [];
  let taken = 0;
  events.on('event', (e) => seen.push(e));
  const next = async <T extends ShimEvent['type']>(type: T): Promise<Extract<ShimEvent, { type: T }>> => {
    const i = await until(`a ${type} event`, () => {
      const j = seen.findIndex((e, k) => k >= taken && e.type === type);
      return j >= 0 ? j : undefined;
    });
    taken = i + 1;
    return seen[i] as Extract<ShimEvent, { type: T }>;
  };
  return { seen, next };
}

test('start and exit as they happen; the first attach client still gets the early output', async (t) => {
  const { dir, track } = bundle(t);
  const r = await startDetached(planFor(['sh', '-c', 'echo early; read l; echo "got $l"; exit 5']), dir, { openStdin: true });
  track(r);
  const events = await ShimEvents.connect(dir);
  t.teardown(() => events.close());
  const { seen, next } = recorder(events);
  t.like(await next('state'), { status: 'running', pid: r.pid, shimPid: r.shimPid, restartCount: 0 });

  const a = await AttachConnection.connect(dir);
  t.teardown(() => a.close());
  const out = collect(a.stdout);
  a.write('go\n');
  t.is(await out, 'early\ngot go\n', 'the events client took nothing of the replay');
  const exit = await next('exit');
  t.like(exit, { exitCode: 5, signal: null, oomKilled: false });
  t.like(await next('state'), { status: 'exited', pid: 0 });
  const last = await events.done;
  t.like(last, { exitCode: 5, finishedAt: exit.finishedAt });
  t.deepEqual(seen.map((e) => e.type), ['state', 'exit', 'state'], 'each once, the final state last');
  await until('the shim to exit', () => !alive(r.shimPid));
});

test('restart on-failure:2: exit, restarting, start, running, twice, then exited', async (t) => {
  const { dir, track } = bundle(t);
  const r = await startDetached(planFor(['sh', '-c', 'read l; exit 3']), dir, { openStdin: true, restart: 'on-failure:2' });
  track(r);
  const events = await ShimEvents.connect(dir);
  t.teardown(() => events.close());
  const { seen, next } = recorder(events);
  await next('state');
  for (let run = 0; run < 3; run++) {
    const a = await AttachConnection.connect(dir);
    a.write('go\n');
    a.end();
    t.like(await next('exit'), { exitCode: 3 });
    if (run < 2) {
      t.like(await next('state'), { status: 'restarting', restartCount: run });
      t.like(await next('start'), { restartCount: run + 1 });
      t.like(await next('state'), { status: 'running', restartCount: run + 1 });
    }
  }
  t.like(await next('state'), { status: 'exited', restartCount: 2 });
  await events.done;
  t.deepEqual(
    seen.map((e) => (e.type === 'state' ? e.status : e.type)),
    ['running', ...Array(2).fill(['exit', 'restarting', 'start', 'running']).flat(), 'exit', 'exited'],
  );
});

test('a shim that is gone: connect ends at once with the exit from exit.json', async (t) => {
  const { dir, track } = bundle(t);
  const r = await startDetached(planFor(['sh', '-c', 'exit 7']), dir);
  track(r);
  await until('the shim to exit', () => !alive(r.shimPid));
  const events = await ShimEvents.connect(dir);
  const { seen } = recorder(events);
  t.like(await events.done, { exitCode: 7, oomKilled: false });
  t.deepEqual(seen.map((e) => e.type), ['exit', 'state']);
  t.like(seen[1], { type: 'state', status: 'exited' });
});

test('oom: a process of the container killed by the OOM killer while it runs, then oomKilled in its exit', async (t) => {
  const runRoot = mkdtempSync(join(tmpdir(), 'nsbox-events-'));
  // Its init survives: the child that allocates is the one the OOM killer picks.
  const script = 'read l; sh -c "x=0123456789abcdef; while :; do x=\\$x\\$x; done"; echo "child $?"; read l';
  const c = await Container.create({ rootfs: rootfs(), runRoot, command: ['sh', '-c', script], resources: { memory: '32m', memorySwap: '32m' } });
  t.teardown(async () => {
    await c.remove();
    rmSync(runRoot, { recursive: true, force: true });
  });
  const { bundle: dir, shimPid } = await c.startDetached({ openStdin: true });
  const events = await ShimEvents.connect(dir);
  t.teardown(() => events.close());
  const { next } = recorder(events);
  await next('state');
  const a = await AttachConnection.connect(dir);
  t.teardown(() => a.close());
  let out = '';
  a.stdout.on('data', (d: Buffer) => (out += d.toString()));
  a.write('go\n');
  t.like(await next('oom'), { oomKills: 1 });
  await until('the shell to see its child killed', () => out.includes('child 137'));
  a.write('done\n');
  t.like(await next('exit'), { exitCode: 0, oomKilled: true });
  await events.done;
  await until('the shim to exit', () => !alive(shimPid));
});
