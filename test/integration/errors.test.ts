/** Errors name what failed, and a failure leaves nothing behind. */
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, NotFoundError, NsboxError, ValidationError } from '../../lib/index.js';
import { children, mountTable, openFds, serialRootTest as test, rootfs } from './_helpers.js';
import { until } from '../fixtures/until.js';

/** The cgroups under nsbox's default parent, in every hierarchy where this process sits. */
function nsboxCgroups(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, ctrl, path] = line.split(':');
    const name = ctrl === '' ? 'unified' : ctrl!.replace(/^name=/, '');
    for (const base of [`/sys/fs/cgroup/${name}${path}/nsbox`, `/sys/fs/cgroup${path}/nsbox`]) {
      try {
        out.push(...readdirSync(base, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${base}/${d.name}`));
      } catch {
        // no such hierarchy or parent
      }
    }
  }
  return out.sort();
}

async function leavesNothing(t: import('ava').ExecutionContext, fn: () => Promise<unknown>) {
  const fds = openFds();
  const mounts = mountTable();
  const kids = children();
  const runDir = '/run/nsbox';
  const dirs = (() => { try { return readdirSync(runDir); } catch { return []; } })();
  const cgroups = nsboxCgroups();
  const e = await t.throwsAsync(fn());
  // The failed spawn's pipes close on a later turn of the loop; the assertions below name what stays.
  await until('the failed spawn to close its fds', () => openFds().length <= fds.length, 2_000).catch(() => undefined);
  t.deepEqual(openFds(), fds, 'no fd left open');
  t.is(mountTable(), mounts, 'no mount left');
  t.deepEqual(children(), kids, 'no child left');
  t.deepEqual((() => { try { return readdirSync(runDir); } catch { return []; } })(), dirs, 'no directory left');
  t.deepEqual(nsboxCgroups(), cgroups, 'no cgroup left');
  return e!;
}

test('a missing command: execve ENOENT, with the path', async (t) => {
  const e = await leavesNothing(t, () => Container.run({ rootfs: rootfs(), command: ['/bin/nope'] }));
  t.true(e instanceof NsboxError);
  t.regex(e.message, /^execve \/bin\/nope: ENOENT/);
  t.is((e as NsboxError).code, 'ENOENT');
  t.is((e as NsboxError).syscall, 'execve');
  t.is((e as NsboxError).path, '/bin/nope');
  const viaPath = await leavesNothing(t, () => Container.run({ rootfs: rootfs(), command: ['no-such-program'] }));
  t.regex(viaPath.message, /^execve no-such-program: ENOENT/);
});

test('a missing or bad rootfs', async (t) => {
  const e = await leavesNothing(t, () => Container.run({ rootfs: '/nonexistent/rootfs', command: ['/bin/true'] }));
  t.true(e instanceof NotFoundError);
  t.regex(e.message, /rootfs \/nonexistent\/rootfs does not exist/);
  const f = await leavesNothing(t, () => Container.run({ rootfs: '/etc/hostname', command: ['/bin/true'] }));
  t.true(f instanceof ValidationError);
  t.is((f as ValidationError).field, 'rootfs');
  // A directory that is no root file system: the failing step and its path are named.
  const g = await leavesNothing(t, () => Container.run({ rootfs: '/var/empty-nsbox-test'.replace(/.*/, '/usr/share/doc'), command: ['/bin/sh'] }));
  t.regex(g.message, /^execve \/bin\/sh: ENOENT/);
});

test('a rootfs or bind source that cannot be resolved is that error, not "does not exist"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-loop-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const loop = join(dir, 'loop');
  symlinkSync(loop, loop);
  const e = await leavesNothing(t, () => Container.run({ rootfs: loop, command: ['/bin/true'] }));
  t.false(e instanceof NotFoundError, e.message);
  t.like(e, { code: 'ELOOP', path: loop, message: `rootfs ${loop}: ELOOP` });
  const f = await leavesNothing(t, () => Container.run({ rootfs: rootfs(), command: ['/bin/true'], mounts: [{ type: 'bind', source: loop, target: '/mnt' }] }));
  t.false(f instanceof NotFoundError, f.message);
  t.like(f, { code: 'ELOOP', path: loop, message: `mounts.0.source ${loop}: ELOOP` });
});

test('a failing setup step names the operation and its path', async (t) => {
  const e = await leavesNothing(t, () =>
    Container.run({ rootfs: rootfs(), command: ['/bin/true'], mounts: [{ type: 'bind', source: '/proc/self/fd/0', target: '/dev/null/x' }] }),
  );
  t.true(e instanceof NsboxError);
  t.regex(e.message, /(mkdir|create|bind) .*\/dev\/null.*: E[A-Z]+/);
});

test('bad options are ValidationErrors naming the field', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ rootfs: rootfs(), command: [] }, 'command'],
    [{ rootfs: 'relative/path', command: ['/bin/true'] }, 'rootfs'],
    [{ rootfs: rootfs(), command: ['/bin/true'], namespaces: { pid: 'yes' } }, 'namespaces.pid'],
    [{ rootfs: rootfs(), command: ['/bin/true'], mounts: [{ type: 'bind', source: '/tmp' }] }, 'mounts.0.target'],
    [{ rootfs: rootfs(), command: ['/bin/true'], user: 'root' }, 'user'],
    [{ rootfs: rootfs(), command: ['/bin/true'], bogus: 1 }, 'container options'],
    [{ rootfs: rootfs(), command: ['/bin/true'], hostname: 'bad host' }, 'hostname'],
  ];
  for (const [opts, field] of cases) {
    const e = await leavesNothing(t, () => Container.run(opts as never));
    t.true(e instanceof ValidationError, `${JSON.stringify(opts)}`);
    t.is((e as ValidationError).field, field);
    t.regex(e.message, new RegExp(`invalid container options: ${field.replace(/\./g, '\\.')}`));
  }
});

test('state errors: start twice, kill before start', async (t) => {
  const c = await Container.create({ rootfs: rootfs(), command: ['/bin/true'], stdio: 'ignore' });
  t.teardown(() => c.remove());
  t.throws(() => c.kill(), { name: 'InvalidStateError' });
  await c.start();
  await t.throwsAsync(c.start(), { name: 'InvalidStateError' });
  await c.wait();
  await c.remove();
  await c.remove();
  t.is(c.state, 'removed');
});

test('a rootfs the mapped root cannot reach: the error names the directory that blocks it and what to do', async (t) => {
  // mkdtemp makes a 0700 directory of root's: host uid 100000 (root in the container) cannot search it.
  const blocked = mkdtempSync(join(tmpdir(), 'nsbox-blocked-'));
  t.teardown(() => rmSync(blocked, { recursive: true, force: true }));
  const inner = join(blocked, 'rootfs');
  cpSync(rootfs(), inner, { recursive: true, verbatimSymlinks: true });
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const e = await t.throwsAsync(
    Container.run({ rootfs: inner, command: ['/bin/true'], stdio: 'ignore', namespaces: { user: { uidMap: map, gidMap: map } } }),
    { instanceOf: NsboxError },
  );
  t.is(e!.code, 'EACCES');
  t.is(e!.path, blocked);
  t.true(e!.message.includes(`host uid 100000 (its uid map), which cannot reach ${inner}: ${blocked} (mode 0700, owner 0:0) does not let it search`), e!.message);
  t.true(e!.message.includes(`chmod o+x ${blocked}`));
  // And once it may search, the same container runs.
  chmodSync(blocked, 0o711);
  await using c = await Container.run({ rootfs: inner, command: ['/bin/true'], stdio: 'ignore', namespaces: { user: { uidMap: map, gidMap: map } } });
  t.deepEqual(await c.wait(), { exitCode: 0, signal: null });
});
