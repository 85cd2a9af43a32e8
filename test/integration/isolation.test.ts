/** Isolation proved from inside the container, on the real kernel. */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { Container } from '../../lib/index.js';
import { collect, mountTable, rootTest as test, rootfs } from './_helpers.js';

async function sh(script: string, options: Record<string, unknown> = {}) {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sh', '-c', script], ...options });
  const [out, err, status] = await Promise.all([collect(c.stdout), collect(c.stderr), c.wait()]);
  return { out, err, status };
}

test('the container is PID 1 and sees no host process', async (t) => {
  const { out, status } = await sh('echo $$; ls /proc | grep -E "^[0-9]+$" | wc -l; ps -o pid,comm');
  t.deepEqual(status, { exitCode: 0, signal: null });
  const [self, count] = out.split('\n');
  t.is(self, '1');
  t.true(Number(count) <= 4, `only the container's processes are visible: ${out}`);
  t.false(out.includes(String(process.pid)) && out.includes('node'));
});

test('own hostname, defaulting to the short id', async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/hostname'] });
  const [out] = await Promise.all([collect(c.stdout), c.wait()]);
  t.is(out.trim(), c.id.slice(0, 12));
  t.not(out.trim(), hostname());
  const named = await sh('hostname', { hostname: 'box-1' });
  t.is(named.out.trim(), 'box-1');
  t.is(hostname(), execFileSync('hostname', { encoding: 'utf8' }).trim(), 'host hostname unchanged');
});

test('own mount table; the host mount table is unchanged', async (t) => {
  const before = mountTable();
  const { out } = await sh('cat /proc/self/mountinfo; readlink /proc/self/ns/mnt');
  t.is(mountTable(), before);
  const lines = out.trim().split('\n');
  const ns = lines.pop()!;
  t.not(ns, readlinkSync('/proc/self/ns/mnt'));
  const targets = lines.map((l) => l.split(' ')[4]);
  t.is(targets[0], '/');
  for (const m of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']) t.true(targets.includes(m), `${m} is mounted`);
  t.false(targets.some((m) => m?.startsWith('/work') || m === '/run'), 'no host mount points leak in');
  t.regex(lines.find((l) => l.split(' ')[4] === '/sys')!, / ro,/);
});

test('the network namespace has lo up and nothing else', async (t) => {
  const { out } = await sh('cat /proc/net/dev | tail -n +3 | cut -d: -f1; ip -o link; readlink /proc/self/ns/net');
  const lines = out.trim().split('\n');
  t.is(lines[0]!.trim(), 'lo');
  t.regex(lines[1]!, /lo: <LOOPBACK,UP,LOWER_UP>/);
  t.is(lines.length, 3);
  t.not(lines[2], readlinkSync('/proc/self/ns/net'));
});

test('SysV IPC is not shared with the host', async (t) => {
  const id = execFileSync('ipcmk', ['-Q'], { encoding: 'utf8' }).match(/(\d+)/)![1]!;
  t.teardown(() => execFileSync('ipcrm', ['-q', id]));
  const { out } = await sh('tail -n +2 /proc/sysvipc/msg | wc -l; readlink /proc/self/ns/ipc');
  const [count, ns] = out.trim().split('\n');
  t.is(count, '0');
  t.not(ns, readlinkSync('/proc/self/ns/ipc'));
});

test('the cgroup namespace is rooted at the container', async (t) => {
  const { out } = await sh('cat /proc/self/cgroup; ls /sys/fs/cgroup');
  for (const line of out.split('\n').filter((l) => /^\d+:/.test(l))) t.true(line.endsWith(':/'), line);
  t.true(out.includes('memory') || out.includes('cgroup.controllers'));
});

test('a user namespace with the id maps asked for', async (t) => {
  const { out, status } = await sh('cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user', {
    namespaces: { user: { uidMap: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMap: [{ containerID: 0, hostID: 100000, size: 65536 }] } },
  });
  t.is(status.exitCode, 0);
  const lines = out.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  t.is(lines[0], '0 100000 65536');
  t.is(lines[1], '0 100000 65536');
  t.is(lines[2], '0');
  t.not(lines[3], readlinkSync('/proc/self/ns/user'));
});

test('a namespace can be shared with the host', async (t) => {
  const { out } = await sh('readlink /proc/self/ns/net; readlink /proc/self/ns/uts', { namespaces: { net: false, uts: false } });
  const [net, uts] = out.trim().split('\n');
  t.is(net, readlinkSync('/proc/self/ns/net'));
  t.is(uts, readlinkSync('/proc/self/ns/uts'));
});

test('mounts: read-only and read-write binds, tmpfs, read-only root', async (t) => {
  const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
  t.teardown(() => execFileSync('rm', ['-rf', dir]));
  const { out } = await sh(
    'echo hi > /rw/f && cat /rw/f; echo x > /ro/g 2>/dev/null || echo ro-denied; echo y > /scratch/h && echo tmpfs-ok; touch /newfile 2>/dev/null || echo root-ro',
    {
      mounts: [
        { type: 'bind', source: dir, target: '/rw' },
        { type: 'bind', source: dir, target: '/ro', readonly: true },
        { type: 'tmpfs', target: '/scratch', size: '1m' },
      ],
      readonlyRootfs: true,
    },
  );
  t.is(out, 'hi\nro-denied\ntmpfs-ok\nroot-ro\n');
  t.is(execFileSync('cat', [`${dir}/f`], { encoding: 'utf8' }), 'hi\n');
});

test('env, cwd and user', async (t) => {
  const { out } = await sh('echo $FOO $HOME; pwd; id -u; id -g', { env: { FOO: 'bar' }, cwd: '/tmp', user: '1000:1000' });
  t.is(out, 'bar /\n/tmp\n1000\n1000\n');
});

test('masked and read-only paths as in crun’s default config', async (t) => {
  const { out } = await sh('cat /proc/keys | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo sys-ro');
  t.is(out, '0\n0\nsys-ro\n');
});

test('a time namespace on request', async (t) => {
  const { out } = await sh('readlink /proc/self/ns/time', { namespaces: { time: true } });
  t.not(out.trim(), readlinkSync('/proc/self/ns/time'));
  const shared = await sh('readlink /proc/self/ns/time');
  t.is(shared.out.trim(), readlinkSync('/proc/self/ns/time'));
});
