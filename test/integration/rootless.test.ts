/**
 * Without root: an unprivileged user (nobody) runs containers in a user namespace of its own,
 * mapped to its own uid, with no cgroup (it may not create one) — on the busybox rootfs and as a
 * host sandbox. The child Node process drops to uid/gid 65534 with setpriv (util-linux).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import ava from 'ava';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImages, pushImages, registryUnavailable, startRegistry } from '../fixtures/registry.js';
import { fileURLToPath } from 'node:url';
import { rootfs, rootTest as test, skipIf, unprivilegedCanRead } from './_helpers.js';

const lib = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
const maxUserNs = Number(execFileSync('cat', ['/proc/sys/user/max_user_namespaces'], { encoding: 'utf8' }).trim());
const why = !hasSetpriv || maxUserNs === 0 ? 'needs setpriv and user namespaces' : !unprivilegedCanRead() ? 'nobody cannot read this checkout (clone it where others can)' : undefined;
const rtest = skipIf(why, test);

// nobody's HOME, whose ~/.local/share/nsbox (the owner index) goes with it once every test is done.
let home: string | undefined;
function nobodyHome(): string {
  if (!home) {
    home = mkdtempSync(join(tmpdir(), 'nsbox-nobody-home-'));
    chownSync(home, 65534, 65534);
  }
  return home;
}

function asNobody(script: string, env: Record<string, string> = {}): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import=tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, HOME: nobodyHome(), XDG_RUNTIME_DIR: '', ...env },
    timeout: 60_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

// nobody's runtime root (no $XDG_RUNTIME_DIR): the library leaves it, empty, as /run/nsbox is
// left; removed once every test here is done (each of them makes it).
ava.after.always(() => {
  if (!why) spawnSync('rmdir', [`${tmpdir()}/nsbox-65534`]);
  if (home) rmSync(home, { recursive: true, force: true });
});

rtest('an unprivileged user runs a container in its own user namespace', (t) => {
  const r = asNobody(`
    import { Container } from ${JSON.stringify(lib)};
    const c = await Container.run({ rootfs: ${JSON.stringify(rootfs())}, command: ['/bin/sh', '-c', 'id -u; cat /proc/self/uid_map; echo $$; hostname'], hostname: 'rootless', namespaces: { user: true } });
    let out = ''; c.stdout.on('data', (d) => (out += d));
    const status = await c.wait();
    const p = await Container.run({ rootfs: ${JSON.stringify(rootfs())}, command: ['/bin/sleep', '10'], namespaces: { user: true }, stdio: 'ignore' });
    const e = await p.exec(['/bin/sh', '-c', 'echo exec-as-$(id -u)']);
    let eout = ''; e.stdout.on('data', (d) => (eout += d));
    await e.wait();
    await p.remove();
    console.log(JSON.stringify({ out, status, eout, cgroup: c.cgroup === undefined, uid: process.getuid() }));
    await c.remove();
  `);
  t.is(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { out: string; status: unknown; eout: string; cgroup: boolean; uid: number };
  t.is(res.uid, 65534);
  const lines = res.out.trim().split('\n');
  t.is(lines[0], '0', 'root inside');
  t.deepEqual(lines[1]!.trim().split(/\s+/), ['0', '65534', '1'], 'mapped to the caller');
  t.is(lines[2], '1');
  t.is(lines[3], 'rootless');
  t.deepEqual(res.status, { exitCode: 0, signal: null });
  t.is(res.eout, 'exec-as-0\n');
  t.true(res.cgroup, 'no cgroup without privileges');
});

rtest('an unprivileged host sandbox', (t) => {
  const r = asNobody(`
    import { Container } from ${JSON.stringify(lib)};
    const c = await Container.run({ command: ['/bin/sh', '-c', 'echo ok > /tmp/f && cat /tmp/f; touch /usr/x 2>/dev/null || echo usr-ro; id -u'], namespaces: { user: true } });
    let out = ''; c.stdout.on('data', (d) => (out += d));
    await c.wait();
    await c.remove();
    console.log(JSON.stringify(out));
  `);
  t.is(r.status, 0, r.stderr);
  t.is(JSON.parse(r.stdout.trim().split('\n').pop()!), 'ok\nusr-ro\n0\n');
});

rtest('without delegated cgroups, resources are skipped with a warning, not a crash', (t) => {
  const r = asNobody(`
    import { Container } from ${JSON.stringify(lib)};
    process.on('warning', (w) => console.error('WARNING', w.code));
    const c = await Container.run({ rootfs: ${JSON.stringify(rootfs())}, command: ['/bin/true'], namespaces: { user: true }, resources: { memory: '64m' } });
    console.log(JSON.stringify({ status: await c.wait(), cgroup: c.cgroup === undefined }));
    await c.remove();
  `);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /WARNING NSBOX_NO_CGROUP/);
  t.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { status: { exitCode: 0, signal: null }, cgroup: true });
});

const noRegistry = registryUnavailable();
skipIf(noRegistry, rtest)('an unprivileged user pulls and runs an image: its own store, overlay in the user namespace, whiteouts and opaque dirs', async (t) => {
  const reg = await startRegistry();
  const images = await buildImages(rootfs());
  const store = mkdtempSync(join(tmpdir(), 'nsbox-rootless-store-'));
  chmodSync(store, 0o777);
  t.teardown(async () => {
    await reg.stop();
    images.cleanup();
    rmSync(store, { recursive: true, force: true });
  });
  await pushImages(images, reg.host);
  const r = asNobody(`
    import { Container } from ${JSON.stringify(lib)};
    const c = await Container.run({ image: '${reg.host}/layered:1', entrypoint: ['/bin/sh', '-c'], command: ['id -u; ls /data; ls /opaque'], namespaces: { user: true } });
    let out = ''; c.stdout.on('data', (d) => (out += d)); c.stderr.on('data', (d) => (out += d));
    const status = await c.wait();
    await c.remove();
    console.log(JSON.stringify({ out, status }));
  `, { NSBOX_ROOT: join(store, 'nsbox') });
  t.is(r.status, 0, r.stderr);
  const { out, status } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { out: string; status: unknown };
  t.deepEqual(status, { exitCode: 0, signal: null });
  t.is(out, '0\nkept.txt\nfrom-layer3.txt\n', 'whiteouts and the opaque dir applied (user.overlay.* metadata, userxattr)');
});

rtest('the escape attempts fail rootless too, and work once the defences are off', (t) => {
  const attempts = [
    'mount -t tmpfs none /tmp 2>/dev/null && echo mount',
    'unshare -U true 2>/dev/null && echo userns',
    'echo 5000 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo procsys',
    // the unprivileged Node process that runs the containers: same user, so only the pid namespace stands between
    'kill -0 $OWNER_PID 2>/dev/null && echo hostpid',
    'grep -q "^CapBnd:\t00000000a80425fb" /proc/self/status || echo caps',
  ].join('; ');
  const r = asNobody(`
    import { Container } from ${JSON.stringify(lib)};
    const out = [];
    for (const opts of [{}, { privileged: true }, { privileged: true, namespaces: { user: true, pid: false } }]) {
      const c = await Container.run({ rootfs: ${JSON.stringify(rootfs())}, command: ['/bin/sh', '-c', ${JSON.stringify(attempts)} + '; echo end'], namespaces: { user: true }, env: { OWNER_PID: String(process.pid) }, ...opts });
      let o = ''; c.stdout.on('data', (d) => (o += d));
      await c.wait();
      await c.remove();
      out.push(o.trim().split('\\n').join(' '));
    }
    console.log(JSON.stringify(out));
  `);
  t.is(r.status, 0, r.stderr);
  const [on, off, hostPid] = JSON.parse(r.stdout.trim().split('\n').pop()!) as [string, string, string];
  t.is(on, 'end', 'every attempt fails in a default rootless container');
  t.is(off, 'mount userns procsys caps end', 'and works privileged (in the user namespace)');
  t.regex(hostPid, /hostpid/, 'with the host pid namespace, a host process is reachable');
});
