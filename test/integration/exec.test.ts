/** exec joins the container: pid namespace (PID 1 is the container's), hostname, mounts, network. */
import { Container, InvalidStateError } from '../../lib/index.js';
import { collect, rootTest as test, rootfs } from './_helpers.js';

test('exec shares pid 1, hostname, mounts and network with its container', async (t) => {
  await using c = await Container.run({
    rootfs: rootfs(),
    command: ['/bin/sh', '-c', 'echo ready; exec sleep 100'],
    hostname: 'exec-box',
    mounts: [{ type: 'tmpfs', target: '/shared' }],
  });
  const inside = (pid: string) => `for n in mnt net uts pid ipc; do readlink /proc/${pid}/ns/$n; done`;
  const p = await c.exec(['/bin/sh', '-c', `cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; ${inside('1')}; ${inside('self')}; grep -c /shared /proc/self/mountinfo; echo $$`]);
  const [out, status] = await Promise.all([collect(p.stdout), p.wait()]);
  t.deepEqual(status, { exitCode: 0, signal: null });
  const lines = out.trim().split('\n');
  t.is(lines[0]!.trim(), 'sleep 100');
  t.is(lines[1], 'exec-box');
  t.deepEqual(lines.slice(2, 7), lines.slice(7, 12), 'same namespaces as PID 1');
  t.is(lines[12], '1');
  t.true(Number(lines[13]) > 1, 'a new pid in the container pid namespace');
  t.true(p.pid !== c.pid);
});

test('exec with its own env, cwd, user, stdin and exit code', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], env: { A: '1' }, stdio: 'ignore' });
  const p = await c.exec(['/bin/sh', '-c', 'read x; echo "$A $B $x $(pwd) $(id -u)"; exit 5'], { env: { B: '2' }, cwd: '/tmp', user: 1000 });
  p.stdin!.end('in\n');
  const [out, status] = await Promise.all([collect(p.stdout), p.wait()]);
  t.is(out, '1 2 in /tmp 1000\n');
  t.deepEqual(status, { exitCode: 5, signal: null });
});

test('exec with a tty', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  const p = await c.exec(['/bin/sh', '-c', 'test -t 0 && stty size'], { tty: { cols: 90, rows: 20 } });
  const [out, status] = await Promise.all([collect(p.stdout), p.wait()]);
  t.is(status.exitCode, 0);
  t.regex(out, /20 90/);
});

test('exec of a missing program fails with execve ENOENT', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  const e = await t.throwsAsync(c.exec(['/bin/nope']));
  t.regex(e!.message, /^execve \/bin\/nope: ENOENT/);
});

test('exec needs a running container', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/true'], stdio: 'ignore' });
  await c.wait();
  await t.throwsAsync(c.exec(['/bin/true']), { instanceOf: InvalidStateError });
});

test('exec processes die with the container', async (t) => {
  const c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  t.teardown(() => c.remove());
  const p = await c.exec(['/bin/sleep', '100'], { stdio: 'ignore' });
  c.kill('SIGKILL');
  t.deepEqual(await p.wait(), { exitCode: null, signal: 'SIGKILL' });
  await c.remove();
});
