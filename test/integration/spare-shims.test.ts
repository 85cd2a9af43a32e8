/**
 * Spare shims (lib/runtime/spare-shims.ts): a shim started ahead and given its container at the
 * start must run it as a shim spawned at the start does (cgroups, namespaces, session, parent,
 * log, exit record, known as the bundle's shim), and closing the spares leaves no process behind.
 */
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from '../../lib/index.js';
import { liveShim } from '../../lib/engine/shim-control.js';
import { readExit, readLog, shimPath } from '../../lib/runtime/shim.js';
import { SpareShims } from '../../lib/runtime/spare-shims.js';
import { rootfs, rootTest as test } from './_helpers.js';
import { alive, ppidOf, until } from './shim-fixture.js';

const statField = (pid: number, i: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[i - 3];
};
const cgroupsOf = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').map((l) => l.slice(l.indexOf(':') + 1)).sort();
const NAMESPACES = ['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup', 'user'];
const namespacesOf = (pid: number) => NAMESPACES.map((n) => readlinkSync(`/proc/${pid}/ns/${n}`) === readlinkSync(`/proc/self/ns/${n}`));

test('a spare shim runs its container as a shim spawned at the start does; close ends the idle one', async (t) => {
  const runRoot = mkdtempSync(join(tmpdir(), 'nsbox-spare-'));
  const spares = new SpareShims(shimPath);
  const pids: number[] = [];
  const containers: Container[] = [];
  t.teardown(async () => {
    await spares.close();
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await until('the test processes to end', () => pids.every((p) => !alive(p))).catch((e: Error) => t.log(`teardown: ${e.message}`));
    // Their cgroups and directories.
    for (const c of containers) await c.remove().catch((e: Error) => t.log(`teardown: ${e.message}`));
    rmSync(runRoot, { recursive: true, force: true });
  });
  spares.refill();
  await spares.ready();
  const spare = spares.idlePid;
  t.truthy(spare, 'a spare is ready');
  t.true(alive(spare!));
  t.is(ppidOf(spare!), process.pid, 'an idle spare is our child (reaped by us)');

  const command = ['sh', '-c', 'echo out; echo err >&2; exec sleep 1000'];
  const viaSpare = await Container.create({ rootfs: rootfs(), command, runRoot, stdio: 'ignore' });
  const spawned = await Container.create({ rootfs: rootfs(), command, runRoot, stdio: 'ignore' });
  containers.push(viaSpare, spawned);
  const a = await viaSpare.startDetached({ spares });
  pids.push(a.shimPid, a.pid);
  const b = await spawned.startDetached({});
  pids.push(b.shimPid, b.pid);
  t.is(a.shimPid, spare!, 'the start took the spare');
  t.is(spares.idlePid, undefined, 'and left none idle (the next is the caller’s to refill)');
  t.not(b.shimPid, spare);

  for (const [r, c] of [[a, viaSpare], [b, spawned]] as const) {
    t.is(liveShim(r.bundle), r.shimPid, 'known as its bundle’s shim');
    t.is(ppidOf(r.pid), r.shimPid, 'the container is its shim’s child');
    t.is(statField(r.shimPid, 6), String(r.shimPid), 'the shim leads a session of its own');
    t.true(Object.values(r.cgroupPaths).length > 0, `${c.id} has cgroups`);
    t.true(cgroupsOf(r.pid).some((l) => l.includes(c.id)), 'the container is in its own cgroups');
  }
  t.deepEqual(namespacesOf(a.pid), namespacesOf(b.pid), 'the same namespaces of its own');
  t.deepEqual(
    cgroupsOf(a.pid).map((l) => l.replace(viaSpare.id, 'ID')),
    cgroupsOf(b.pid).map((l) => l.replace(spawned.id, 'ID')),
    'the same cgroup placement',
  );
  await until('both logs', () => readLog(a.bundle).length === 2 && readLog(b.bundle).length === 2);
  const lines = (bundle: string) => readLog(bundle).map((e) => `${e.stream}:${e.log}`).sort();
  t.deepEqual(lines(a.bundle), lines(b.bundle));

  process.kill(a.pid, 'SIGKILL');
  process.kill(b.pid, 'SIGKILL');
  await until('both exits recorded and both shims gone', () => readExit(a.bundle) !== undefined && readExit(b.bundle) !== undefined && !alive(a.shimPid) && !alive(b.shimPid));
  t.like(readExit(a.bundle), { signal: 'SIGKILL' });
  t.deepEqual({ ...readExit(a.bundle), finishedAt: '' }, { ...readExit(b.bundle), finishedAt: '' });

  // Closed with a spare idle: it is gone once close resolves.
  spares.refill();
  await spares.ready();
  const next = spares.idlePid;
  t.truthy(next);
  await spares.close();
  t.false(alive(next!), 'close ended the idle spare');
  t.is(spares.idlePid, undefined);
  spares.refill();
  await spares.ready();
  t.is(spares.idlePid, undefined, 'none is spawned after close');
});
