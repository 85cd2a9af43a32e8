/**
 * What the quick run does on its own thread rather than the thread pool: cgroup directories once
 * cgroupDirsOnThisThread was called (a process-wide switch: this file's tests run in a process of
 * their own).
 */
import { existsSync } from 'node:fs';
import { cgroupDirsOnThisThread } from '../../lib/cgroup/cgroupfs.js';
import { detectCgroups } from '../../lib/cgroup/detect.js';
import { cgroupPathFor, makeDriver } from '../../lib/cgroup/paths.js';
import { serialRootTest as test } from './_helpers.js';

test('cgroupDirsOnThisThread: a container cgroup made and removed in every hierarchy without waiting for the thread pool', async (t) => {
  const driver = makeDriver(await detectCgroups(), 'auto', (own) => cgroupPathFor(own, 'nsbox', `nsbox-test-thread-${process.pid}`, true));
  const dirs = Object.values(driver.paths);
  t.teardown(() => driver.remove().catch(() => undefined));
  cgroupDirsOnThisThread();
  // Settled before any callback of the event loop could run: no hop through the thread pool.
  let turned = false;
  setImmediate(() => (turned = true));
  await driver.create();
  t.false(turned, 'made before the event loop turned');
  t.deepEqual(dirs.filter((d) => !existsSync(d)), []);
  await driver.remove();
  t.false(turned, 'removed before the event loop turned');
  t.deepEqual(dirs.filter((d) => existsSync(d)), []);
});
