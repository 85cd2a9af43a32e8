/** A root built by overlayfs from read-only layer directories, with a writable layer per container. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Container } from '../../lib/index.js';
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
