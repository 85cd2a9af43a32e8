/**
 * What the quick run does on its own thread, in one call of the addon each: spawnSync (spawn's
 * results and errors), and its cgroup's making and removal (cgroupMake, cgroupRemove) from what
 * lib/cgroup/native-ops.ts compiles of a driver, as the run plan keeps it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { detectCgroups } from '../../lib/cgroup/detect.js';
import { V2_CONTROLLERS } from '../../lib/cgroup/index.js';
import { cgroupDirEntries, cgroupRemoval, unifiedKillFile } from '../../lib/cgroup/native-ops.js';
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

/** A driver for a test cgroup under `nsbox`, and what the plan would keep of it. */
async function compiled(name: string) {
  const layout = await detectCgroups();
  const driver = makeDriver(layout, 'auto', (own) => cgroupPathFor(own, 'nsbox', `${name}-${process.pid}`, true));
  const make = cgroupDirEntries(driver, layout);
  if (!make) throw new Error('no entries for this host');
  return { layout, driver, make, dirs: Object.values(driver.paths) };
}

test('cgroupMake and cgroupRemove: the cgroup in every hierarchy as its driver makes it, then gone with the process moved into it', async (t) => {
  const { layout, driver, make, dirs } = await compiled('nsbox-test-native');
  t.teardown(() => driver.remove().catch(() => undefined));
  native.cgroupMake(make, [...V2_CONTROLLERS]);
  t.deepEqual(dirs.filter((d) => !existsSync(d)), [], 'every hierarchy has the directory');
  const cpuset = driver.paths.cpuset;
  // A v1 cpuset made empty takes no process: its cpus and mems are the parent's.
  if (cpuset && cpuset !== driver.paths.unified) {
    t.not(readFileSync(`${cpuset}/cpuset.cpus`, 'utf8').trim(), '');
    t.not(readFileSync(`${cpuset}/cpuset.mems`, 'utf8').trim(), '');
  }
  // A process moved in from outside (not in a pid namespace whose init's exit ends it) is killed by the removal.
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  await once(child, 'spawn');
  const exited = once(child, 'exit');
  await driver.addProcess(child.pid!);
  native.cgroupRemove(cgroupRemoval(driver.paths, layout, unifiedKillFile(driver.paths), () => true));
  const [code, signal] = await exited;
  t.is(code, null);
  t.is(signal, 'SIGKILL');
  t.deepEqual(dirs.filter((d) => existsSync(d)), [], 'every hierarchy is rid of it');
});

test('cgroupMake: a leaf that exists already is refused, and the levels made before it are removed', async (t) => {
  const { layout, driver, make } = await compiled('nsbox-test-native-taken');
  t.teardown(() => driver.remove().catch(() => undefined));
  // The last hierarchy's leaf taken, as by another container of the same name. (With one
  // hierarchy only, as on a cgroup2 host, nothing is made before the refused one.)
  native.cgroupMake(make.slice(-1), [...V2_CONTROLLERS]);
  const e = t.throws(() => native.cgroupMake(make, [...V2_CONTROLLERS]), { instanceOf: NsboxError });
  t.is(e.code, 'EEXIST');
  t.regex(e.message, /mkdir .*nsbox-test-native-taken/);
  t.deepEqual(make.slice(0, -1).filter((m) => existsSync(m.dir)).map((m) => m.dir), []);
  native.cgroupRemove(cgroupRemoval(driver.paths, layout, false, () => true));
  t.false(existsSync(make.at(-1)!.dir));
});
