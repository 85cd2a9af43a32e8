/**
 * A detached container that the kernel's OOM killer ends: nsbox-shim counts the OOM kills of the
 * container's cgroup over the run and records `oomKilled` in exit.json, which the engine's record
 * and docker's inspect (State.OOMKilled) show. Real kernel, real shim, real cgroup (v1 here; v2
 * through test/cgroup-v2-in-vm.sh).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerInspect } from '../../lib/api/container-json.js';
import { Engine } from '../../lib/engine/index.js';
import { readExit } from '../../lib/runtime/bundle.js';
import { rootTest as test, rootfs } from './_helpers.js';

// Doubles a string until the cgroup's limit is reached: no swap to fall back on (memorySwap = memory).
const allocate = ['sh', '-c', 'echo start; x=0123456789abcdef; while :; do x=$x$x; done'];

test('a container the OOM killer ends: exit code 137, oomKilled in exit.json, the record and inspect', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-oom-'));
  const engine = await Engine.open({ root });
  t.teardown(async () => {
    for (const r of await engine.list({ all: true })) await engine.remove(r.id, { force: true });
    rmSync(root, { recursive: true, force: true });
  });
  const r = await engine.create({ options: { rootfs: rootfs(), command: allocate, resources: { memory: '32m', memorySwap: '32m' } } });
  await engine.start(r.id);
  t.deepEqual(await engine.wait(r.id), { exitCode: 137 });
  const done = await engine.get(r.id);
  t.like(done, { state: 'exited', exitCode: null, signal: 'SIGKILL', oomKilled: true });
  if (done.supervisor?.kind === 'shim') t.like(readExit(done.supervisor.bundle), { signal: 'SIGKILL', oomKilled: true });
  else t.fail('a started container is supervised by its shim');
  t.like(containerInspect(done, undefined, '').State, { OOMKilled: true, ExitCode: 137, Status: 'exited' });

  // The same container, now within its limit: the next run is not OOM-killed.
  await engine.remove(r.id);
  const ok = await engine.create({ options: { rootfs: rootfs(), command: ['sh', '-c', 'exit 0'], resources: { memory: '32m', memorySwap: '32m' } } });
  await engine.start(ok.id);
  t.deepEqual(await engine.wait(ok.id), { exitCode: 0 });
  t.like(await engine.get(ok.id), { oomKilled: false });
});
