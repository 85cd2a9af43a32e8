/**
 * The bundle contract (lib/runtime/bundle.ts) against what the real nsbox-shim wrote: a detached
 * container started through `Container.startDetached`, every file read through the module's
 * schemas made strict, so that a field the shim writes and the schema lacks fails too.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import { Container } from '../../lib/runtime/container.js';
import {
  BundleFile,
  bundlePath,
  CgroupPathsSchema,
  HealthResultSchema,
  LogEntrySchema,
  readHealth,
  readCgroupPaths,
  readExit,
  readLog,
  readShimPid,
  readState,
  ShimExitSchema,
  ShimHealthSchema,
  ShimStateSchema,
} from '../../lib/runtime/bundle.js';
import { AttachConnection } from '../../lib/runtime/shim.js';
import { rootTest as test, rootfs } from './_helpers.js';
import { alive, until } from './shim-fixture.js';

const strictRead = <T extends z.ZodObject>(schema: T, file: string) => schema.strict().parse(JSON.parse(readFileSync(file, 'utf8')));

test('every file of a real shim bundle matches its schema: state.json running and done, exit.json, cgroup.json, health.json, the log', async (t) => {
  const runRoot = mkdtempSync(join(tmpdir(), 'nsbox-bundle-'));
  const c = await Container.create({ rootfs: rootfs(), runRoot, command: ['sh', '-c', 'echo out; echo err >&2; read l; echo "got $l"; exit 3'], resources: { memory: '64m' }, healthcheck: { test: ['CMD', 'true'], interval: 100 } });
  t.teardown(async () => {
    await c.remove();
    rmSync(runRoot, { recursive: true, force: true });
  });
  const { bundle, shimPid, pid, cgroupPaths } = await c.startDetached({ openStdin: true });
  // plan.bin's bytes went to the shim on its stdin (startDetached): no file for them.
  const files = Object.values(BundleFile).filter((f) => f !== BundleFile.exit && f !== BundleFile.plan);
  t.deepEqual(files.filter((f) => !existsSync(join(bundle, f))), [], 'every file is there while it runs');

  // health.json: written at start (starting), and by the probes after.
  const health = strictRead(ShimHealthSchema, bundlePath(bundle, 'health'));
  t.true(health.Status === 'starting' || health.Status === 'healthy');
  for (const r of health.Log as unknown[]) HealthResultSchema.strict().parse(r);

  const running = strictRead(ShimStateSchema, bundlePath(bundle, 'state'));
  t.deepEqual(readState(bundle), running);
  t.like(running, { status: 'running', pid, shimPid, restartCount: 0 });
  t.is(readShimPid(bundle), shimPid);
  t.is(readExit(bundle), undefined, 'no exit while it runs');

  const cgroups = CgroupPathsSchema.parse(JSON.parse(readFileSync(bundlePath(bundle, 'cgroup'), 'utf8')));
  t.deepEqual(cgroups, cgroupPaths);
  t.deepEqual(readCgroupPaths(bundle), cgroupPaths);
  t.true(Object.keys(cgroups).length > 0, 'a container with a memory limit has a cgroup');

  const a = await AttachConnection.connect(bundle);
  t.teardown(() => a.close());
  const exitFrame = new Promise((resolve) => a.once('exit', resolve));
  await until('the first lines in the log', () => readLog(bundle).length >= 2);
  a.write('bye\n');
  await until('the shim to exit', () => !alive(shimPid));

  const exit = strictRead(ShimExitSchema, bundlePath(bundle, 'exit'));
  t.true('oomKilled' in JSON.parse(readFileSync(bundlePath(bundle, 'exit'), 'utf8')), 'the shim writes oomKilled itself');
  t.like(exit, { exitCode: 3, signal: null, oomKilled: false });
  t.deepEqual(readExit(bundle), exit);
  t.deepEqual(await exitFrame, exit, 'the attach exit frame is exit.json');
  t.like(strictRead(ShimStateSchema, bundlePath(bundle, 'state')), { status: 'exited', pid: 0, shimPid, restartCount: 0 });
  // Once the container is gone the status is unhealthy, as docker's monitor leaves it.
  t.is(readHealth(bundle)?.Status, 'unhealthy');

  const lines = readFileSync(bundlePath(bundle, 'log'), 'utf8').trimEnd().split('\n');
  const entries = lines.map((l) => LogEntrySchema.strict().parse(JSON.parse(l)));
  t.deepEqual(readLog(bundle), entries);
  t.deepEqual(entries.map((e) => [e.stream, e.log]).sort(), [['stderr', 'err\n'], ['stdout', 'got bye\n'], ['stdout', 'out\n']]);
  for (const f of ['shimPid', 'attach', 'events'] as const) t.false(existsSync(bundlePath(bundle, f)), `${BundleFile[f]} is removed`);
});
