/** A root built by overlayfs from read-only layer directories, with a writable layer per container. */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Container } from '../../lib/index.js';
import { NsboxError } from '../../lib/errors.js';
import { constants, native } from '../../lib/native.js';
import { MS } from '../../lib/runtime/plan.js';
import { collect, mountTable, rootTest as test, rootfs } from './_helpers.js';
import { once } from 'node:events';

test('layers: the top layer shadows the base, writes go to a private upper layer', async (t) => {
  const top = mkdtempSync('/tmp/nsbox-layer-');
  t.teardown(() => rmSync(top, { recursive: true, force: true }));
  mkdirSync(join(top, 'etc'));
  writeFileSync(join(top, 'etc/hostname'), 'from-top-layer\n');
  writeFileSync(join(top, 'hello'), 'hello from the top layer\n');
  const mounts = mountTable();
  const c = await Container.run({
    layers: [top, rootfs()],
    command: ['/bin/sh', '-c', 'cat /hello /etc/hostname; echo new > /written; cat /written; rm /hello && echo removed; grep -c " - overlay " /proc/self/mountinfo'],
  });
  t.teardown(() => c.remove()); // idempotent: the test removes it itself, this is for a failure half-way
  const [out, status] = await Promise.all([collect(c.stdout), c.wait()]);
  t.deepEqual(status, { exitCode: 0, signal: null });
  t.is(out, 'hello from the top layer\nfrom-top-layer\nnew\nremoved\n1\n');
  t.is(readFileSync(join(top, 'hello'), 'utf8'), 'hello from the top layer\n', 'the layer itself is untouched');
  t.false(existsSync(join(rootfs(), 'written')));
  t.is(mountTable(), mounts, 'the overlay lives in the container mount namespace only');
  const runDir = `/run/nsbox/${c.id}`;
  t.true(existsSync(join(runDir, 'upper/written')));
  await c.remove();
  t.false(existsSync(runDir), 'the writable layer goes with the container');
  t.notThrows(() => execFileSync('true'));
});

test('layers: exec sees the same overlay', async (t) => {
  await using c = await Container.run({ layers: [rootfs()], command: ['/bin/sh', '-c', 'echo shared > /tmp/x; echo written; exec sleep 100'] });
  await once(c.stdout!, 'data');
  const p = await c.exec(['/bin/cat', '/tmp/x']);
  const [out] = await Promise.all([collect(p.stdout), p.wait()]);
  t.is(out, 'shared\n');
});

test('layers: the copy fallback builds the same tree, whiteouts and opaque dirs included', async (t) => {
  const { native } = await import('../../lib/native.js');
  const top = mkdtempSync('/tmp/nsbox-layer-');
  t.teardown(() => rmSync(top, { recursive: true, force: true }));
  // A whiteout that deletes /bin/vi of the base, and an opaque /home that hides its /home/user.
  mkdirSync(join(top, 'bin'));
  native.mknod(join(top, 'bin/vi'), 0o020000, 0, 0);
  mkdirSync(join(top, 'home'));
  native.lsetxattr(join(top, 'home'), 'trusted.overlay.opaque', Buffer.from('y'));
  writeFileSync(join(top, 'home/only'), 'x');
  const script = 'test -e /bin/vi && echo vi || echo no-vi; ls /home; test -x /bin/sh && echo sh';
  const outputs: string[] = [];
  for (const copyLayers of [false, true]) {
    await using c = await Container.run({ layers: [top, rootfs()], copyLayers, command: ['/bin/sh', '-c', script] });
    const [out] = await Promise.all([collect(c.stdout), c.wait()]);
    outputs.push(out);
  }
  t.is(outputs[0], 'no-vi\nonly\nsh\n');
  t.is(outputs[1], outputs[0]);
});

test('layers: volatileLayer mounts the writable layer volatile (no sync of the upper file system at the exit)', async (t) => {
  const grep = ['/bin/sh', '-c', 'grep " - overlay " /proc/self/mountinfo'];
  const mounted = async (volatileLayer: boolean) => {
    await using c = await Container.run({ layers: [rootfs()], volatileLayer, command: grep });
    const [out, status] = await Promise.all([collect(c.stdout), c.wait()]);
    t.deepEqual(status, { exitCode: 0, signal: null });
    return out;
  };
  t.regex(await mounted(true), /[,\s]fsync=volatile\b|,volatile\b/);
  t.notRegex(await mounted(false), /volatile/);
});

test('layers: a mount whose data the kernel refuses (EINVAL) is mounted with its fallbackData', async (t) => {
  const dir = mkdtempSync('/tmp/nsbox-fallback-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['upper', 'work', 'merged']) mkdirSync(join(dir, d));
  const data = `lowerdir=${rootfs()},upperdir=${dir}/upper,workdir=${dir}/work`;
  const devnull = openSync('/dev/null', 'r+');
  t.teardown(() => closeSync(devnull));
  // An option no kernel knows stands for `volatile` on a kernel before 5.10.
  const plan = (fallback: boolean) => ({
    cloneFlags: constants.CLONE_NEWNS,
    ops: [
      { op: 'mount' as const, target: '/', flags: MS.REC | MS.PRIVATE },
      { op: 'mount' as const, source: 'overlay', target: join(dir, 'merged'), fstype: 'overlay', data: `${data},nsbox_no_such_option`, ...(fallback ? { fallbackData: data } : {}) },
    ],
    argv: ['/bin/sh', '-c', `test -x ${dir}/merged/bin/busybox`],
    env: [],
    path: '/usr/bin:/bin',
    stdio: [devnull, devnull, devnull] as [number, number, number],
  });
  const e = t.throws(() => native.spawnSync(plan(false)), { instanceOf: NsboxError });
  t.is(e.code, 'EINVAL');
  t.is(e.syscall, 'mount');
  const c = native.spawnSync(plan(true));
  const code = await new Promise<number | null>((resolve) =>
    native.watchExit(c.pidfd, (info) => {
      closeSync(c.pidfd);
      resolve(info.exitCode ?? null);
    }),
  );
  t.is(code, 0, 'the overlay was mounted with the fallback data');
});
