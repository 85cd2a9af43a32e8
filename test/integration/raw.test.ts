/** The raw wrappers act on the calling (Node) process: shown with reversible operations only. */
import { closeSync, mkdtempSync, openSync, readFileSync, rmdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { Container, NsboxError, raw } from '../../lib/index.js';
import { serialRootTest as test, rootfs } from './_helpers.js';

test('mount and umount act on this process’s mount namespace', (t) => {
  const dir = mkdtempSync('/tmp/nsbox-raw-');
  t.teardown(() => {
    try {
      raw.umount(dir, raw.constants.MNT_DETACH);
    } catch {
      // not mounted
    }
    rmdirSync(dir);
  });
  raw.mount('tmpfs', dir, 'tmpfs', raw.constants.MS_NOSUID | raw.constants.MS_NODEV, 'size=1m');
  t.true(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${dir} `));
  raw.umount(dir);
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${dir} `));
});

test('errors carry code, syscall and path', (t) => {
  const e = t.throws(() => raw.pivotRoot('/nonexistent-nsbox', '/nonexistent-nsbox/old'), { instanceOf: NsboxError });
  t.is(e.code, 'ENOENT');
  t.is(e.syscall, 'pivot_root');
  t.is(e.path, '/nonexistent-nsbox');
  // Node is multi-threaded: a new user namespace needs a single-threaded caller.
  t.is(t.throws(() => raw.unshare(raw.constants.CLONE_NEWUSER), { instanceOf: NsboxError }).code, 'EINVAL');
});

test('setns moves the calling thread into a container’s namespace, and back', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], hostname: 'raw-setns', stdio: 'ignore' });
  const mine = openSync('/proc/self/ns/uts', 'r');
  const theirs = openSync(`/proc/${c.pid}/ns/uts`, 'r');
  try {
    raw.setns(theirs, raw.constants.CLONE_NEWUTS);
    t.is(hostname(), 'raw-setns');
  } finally {
    raw.setns(mine, raw.constants.CLONE_NEWUTS);
    closeSync(mine);
    closeSync(theirs);
  }
  t.not(hostname(), 'raw-setns');
});
