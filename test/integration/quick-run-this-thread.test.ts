/**
 * What the quick run does on its own thread rather than the thread pool: the addon's spawnSync
 * (spawn's results and errors), and cgroup directories once cgroupDirsOnThisThread was called (a
 * process-wide switch: this file's tests run in a process of their own).
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import { cgroupDirsOnThisThread } from '../../lib/cgroup/cgroupfs.js';
import { detectCgroups } from '../../lib/cgroup/detect.js';
import { cgroupPathFor, makeDriver } from '../../lib/cgroup/paths.js';
import { constants, native } from '../../lib/native.js';
import { NsboxError } from '../../lib/errors.js';
import { serialRootTest as test } from './_helpers.js';

const exitOf = (pidfd: number) =>
  new Promise<number | null>((resolve) =>
    native.watchExit(pidfd, (info) => {
      closeSync(pidfd);
      resolve(info.exitCode ?? null);
    }),
  );

test('spawnSync returns once the execve succeeded, with a pid and a pidfd; failures throw as spawn rejects', async (t) => {
  const devnull = openSync('/dev/null', 'r+');
  t.teardown(() => closeSync(devnull));
  const plan = (argv: string[]) => ({ cloneFlags: constants.CLONE_NEWNS | constants.CLONE_NEWPID, ops: [], argv, env: [], path: '/usr/bin:/bin', stdio: [devnull, devnull, devnull] as [number, number, number] });
  const c = native.spawnSync(plan(['sh', '-c', 'exit 7']));
  t.true(c.pid > 0);
  t.is(await exitOf(c.pidfd), 7);
  const e = t.throws(() => native.spawnSync(plan(['/nonexistent-nsbox-command'])), { instanceOf: NsboxError });
  t.is(e.code, 'ENOENT');
  t.is(e.syscall, 'execve');
});

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
