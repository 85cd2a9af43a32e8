/**
 * The engine's ContainerWatch against a real nsbox-shim: it learns a container's exit from the
 * shim's events.sock as it happens (the exit code with it, not from exit.json), and falls back to
 * the files and the pidfd when no socket answers (the shim is gone).
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerStore } from '../../lib/engine/container-store.js';
import { ContainerWatch } from '../../lib/engine/container-watch.js';
import type { EngineContext } from '../../lib/engine/engine-context.js';
import type { ContainerRecord } from '../../lib/engine/records.js';
import { AttachConnection, startDetached } from '../../lib/runtime/shim.js';
import { rootTest as test } from './_helpers.js';
import { alive, bundle, planFor, until } from './shim-fixture.js';

const id = 'c'.repeat(64);

/** The watch reads nothing of the store but where a container's directories are. */
async function context(t: { teardown: (f: () => void) => void }): Promise<EngineContext> {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-watch-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return { store: await ContainerStore.open({ root }) } as EngineContext;
}

/** A record of a container that a shim in `dir` runs (what the engine records at start). */
const running = (dir: string, shimPid: number) => ({ state: 'running', supervisor: { kind: 'shim', pid: shimPid, bundle: dir } }) as unknown as ContainerRecord;

test('the exit code comes from the shim as the container exits, even when exit.json cannot be written', async (t) => {
  const ctx = await context(t);
  const { dir, track } = bundle(t);
  const r = await startDetached(planFor(['sh', '-c', 'read l; exit 7']), dir, { openStdin: true });
  track(r);
  // A directory in exit.json's place: the shim's rename over it fails (as a full disk would make
  // its write fail), so only the events can tell the exit code.
  mkdirSync(join(dir, 'exit.json'));
  let wakes = 0;
  const watch = new ContainerWatch(ctx, id, () => wakes++);
  t.teardown(() => watch.close());
  watch.arm(running(dir, r.shimPid));
  // The shim's first event (its state at connect) wakes the watch: from then on it listens.
  await until('the events socket to answer', () => wakes > 0);
  t.is(watch.lastExit, undefined, 'no exit before there is one');

  const a = await AttachConnection.connect(dir);
  t.teardown(() => a.close());
  a.write('go\n');
  const exit = await until('the exit from the events', () => watch.lastExit);
  t.like(exit, { exitCode: 7, signal: null, oomKilled: false });
  t.true(statSync(join(dir, 'exit.json')).isDirectory(), 'the exit did not come from the file');
  await until('the shim to exit', () => !alive(r.shimPid));
});

test('a shim that is gone: the watch wakes at once and has the exit from exit.json', async (t) => {
  const ctx = await context(t);
  const { dir, track } = bundle(t);
  const r = await startDetached(planFor(['sh', '-c', 'exit 3']), dir);
  track(r);
  await until('the shim to exit', () => !alive(r.shimPid));
  let wakes = 0;
  const watch = new ContainerWatch(ctx, id, () => wakes++);
  t.teardown(() => watch.close());
  watch.arm(running(dir, r.shimPid));
  await until('a wake-up', () => wakes > 0);
  const exit = await until('the exit from the files', () => watch.lastExit);
  t.like(exit, { exitCode: 3, signal: null });
});
