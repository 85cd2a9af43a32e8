/**
 * Rootless with subordinate ids: a user created for the test, granted a range in /etc/subuid and
 * /etc/subgid, runs a container whose user namespace maps root to the user and 1… to the range,
 * through newuidmap / newgidmap (Debian's uidmap). The user is removed afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { isRoot, rootfs, skipIf, unprivilegedCanRead } from './_helpers.js';

const USER = 'nsbox-rootless-test';
const lib = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));
const reason = !isRoot
  ? 'needs root to create the test user'
  : !existsSync('/usr/bin/newuidmap') || !existsSync('/usr/bin/newgidmap')
    ? 'newuidmap/newgidmap are not installed (Debian package uidmap)'
    : spawnSync('useradd', ['--help']).status !== 0
      ? 'useradd is missing'
      : !unprivilegedCanRead()
        ? 'an unprivileged user cannot read this checkout (clone it where others can)'
        : undefined;
const rtest = skipIf(reason, test.serial);

let uid = 0;
let gid = 0;
let subuid: [number, number] = [0, 0];
let subgid: [number, number] = [0, 0];
test.before(() => {
  if (reason) return;
  spawnSync('userdel', [USER]);
  execFileSync('useradd', ['-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', USER]);
  // useradd grants a range by itself where /etc/subuid exists (login.defs SUB_UID_*); make sure.
  const has = (f: string) => existsSync(f) && readFileSync(f, 'utf8').split('\n').some((l) => l.startsWith(`${USER}:`));
  if (!has('/etc/subuid') || !has('/etc/subgid')) execFileSync('usermod', ['--add-subuids', '300000-365535', '--add-subgids', '300000-365535', USER]);
  const first = (f: string) => readFileSync(f, 'utf8').split('\n').find((l) => l.startsWith(`${USER}:`))!.split(':').map(Number);
  subuid = first('/etc/subuid').slice(1) as [number, number];
  subgid = first('/etc/subgid').slice(1) as [number, number];
  uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
  gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim());
});
test.after.always(() => {
  if (!reason) spawnSync('userdel', [USER]);
});

rtest('a user with subordinate ids gets a full range inside its user namespace', (t) => {
  const script = `
    import { Container } from ${JSON.stringify(lib)};
    const c = await Container.run({
      rootfs: ${JSON.stringify(rootfs())},
      command: ['/bin/sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; touch /dev/shm/f && chown 1000:1000 /dev/shm/f && stat -c %u:%g /dev/shm/f; id -u'],
      namespaces: { user: true },
    });
    let out = ''; c.stdout.on('data', (d) => (out += d)); c.stderr.on('data', (d) => (out += d));
    const status = await c.wait();
    await c.remove();
    console.log(JSON.stringify({ out, status }));
  `;
  // a home of its own: /tmp/.local (the store's owner notes) is whichever rootless user's came first
  const home = mkdtempSync(join(tmpdir(), 'nsbox-subids-home-'));
  chownSync(home, uid, gid);
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', process.execPath, '--import=tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, HOME: home, XDG_RUNTIME_DIR: '' },
    timeout: 60_000,
  });
  t.is(r.status, 0, r.stderr);
  const { out, status } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { out: string; status: unknown };
  const lines = out.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  const sub = ([start, count]: [number, number]) => `1 ${start} ${Math.min(count, 65536)}`;
  t.deepEqual(lines.slice(0, 4), [`0 ${uid} 1`, sub(subuid), `0 ${gid} 1`, sub(subgid)]);
  t.is(lines[4], '1000:1000', 'ids of the subordinate range can own files inside');
  t.is(lines[5], '0');
  t.deepEqual(status, { exitCode: 0, signal: null });
});
