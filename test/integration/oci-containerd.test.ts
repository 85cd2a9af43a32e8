/**
 * nsbox-runc under containerd 1.6 (Debian's): the test's own containerd (its own root, state dir
 * and socket; never the system service), `ctr` with `--runc-binary` set to nsbox-runc through the
 * io.containerd.runc.v2 shim: run --rm, run -d + task exec/ps/pause/resume/kill/delete, a memory
 * limit on the container's cgroup.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { native } from '../../lib/native.js';
import { isRoot, rootfs, skipIf } from './_helpers.js';

interface Ctx {
  dir: string;
  sock: string;
  containerd: ChildProcess;
}
const test = anyTest as TestFn<Ctx>;
const bin = fileURLToPath(new URL('../../build/Release/nsbox-runc', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/oci/main.js', import.meta.url));
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const reason = !isRoot ? 'needs root' : !existsSync(dist) ? 'dist/ is not built (npm test builds it)' : !existsSync(bin) ? 'build/Release/nsbox-runc is not built' : !has('containerd') || !has('ctr') ? "needs Debian's containerd (test/install-deps.sh)" : undefined;
const rtest = skipIf(reason, test.serial);

/** Resolves when `pid` has exited (its pidfd becomes readable); at once when it is gone already. */
async function exited(pid: number): Promise<void> {
  let fd: number;
  try {
    fd = native.pidfdOpen(pid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw e;
  }
  await new Promise((resolve) => native.watchExit(fd, resolve));
}

function ctr(t: { context: Ctx }, args: string[]): SpawnSyncReturns<string> {
  return spawnSync('ctr', ['--address', t.context.sock, ...args], { encoding: 'utf8', timeout: 60_000 });
}
// The runtime's state (and nsbox-runc's plan cache) under the test's own directory, not containerd's
// default /run/containerd/runc, so nothing outlives the test.
let runcRoot = '';
const runArgs = (id: string) => ['--runc-binary', bin, '--runc-root', runcRoot, '--cgroup', `nsbox-runc-ctr/${id}`, '--rootfs', rootfs(), id];

test.before(async (t) => {
  if (reason) return;
  const dir = mkdtempSync(join(tmpdir(), 'oci-containerd-'));
  t.context.dir = dir;
  runcRoot = join(dir, 'runc');
  t.context.sock = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(config, [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${t.context.sock}"`,
    '[ttrpc]',
    `  address = "${t.context.sock}.ttrpc"`,
    '',
  ].join('\n'));
  // Ready when its socket appears (inotify on the directory).
  const ready = new Promise<void>((resolve) => {
    const w = watch(dir, () => {
      if (existsSync(t.context.sock)) {
        w.close();
        resolve();
      }
    });
  });
  t.context.containerd = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'ignore'] });
  await ready;
});

test.after.always(async (t) => {
  const c = t.context.containerd;
  if (c?.pid) {
    for (const id of ['ctr-d']) ctr(t, ['task', 'kill', '-s', 'KILL', id]), ctr(t, ['task', 'delete', id]), ctr(t, ['container', 'delete', id]);
    const fd = native.pidfdOpen(c.pid);
    const gone = new Promise((resolve) => c.once('exit', resolve));
    native.sendSignal(fd, 15);
    await gone;
  }
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

rtest('ctr run --rm: output, exit status, nothing left', (t) => {
  const r = ctr(t, ['run', '--rm', ...runArgs('ctr-rm'), 'sh', '-c', 'echo hello; exit 0']);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'hello\n');
  const failed = ctr(t, ['run', '--rm', ...runArgs('ctr-rm2'), 'sh', '-c', 'exit 3']);
  t.is(failed.status, 3);
  t.is(ctr(t, ['container', 'ls', '-q']).stdout, '');
});

rtest('ctr run -d, task exec, ps, pause/resume, memory limit, kill, delete', async (t) => {
  const r = ctr(t, ['run', '-d', '--memory-limit', String(64 << 20), ...runArgs('ctr-d'), 'sleep', '100']);
  t.is(r.status, 0, r.stderr);
  const e = ctr(t, ['task', 'exec', '--exec-id', 'e1', 'ctr-d', 'sh', '-c', 'echo in; exit 4']);
  t.is(e.stdout, 'in\n');
  t.is(e.status, 4);
  const ps = ctr(t, ['task', 'ps', 'ctr-d']);
  t.regex(ps.stdout, /PID/);
  const pid = Number(/^ctr-d\s+(\d+)\s+RUNNING/m.exec(ctr(t, ['task', 'ls']).stdout)?.[1]);
  t.true(pid > 0);
  const memCgroup = /:memory:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
  t.truthy(memCgroup);
  t.is(readFileSync(`/sys/fs/cgroup/memory${memCgroup}/memory.limit_in_bytes`, 'utf8').trim(), String(64 << 20));
  t.is(ctr(t, ['task', 'pause', 'ctr-d']).status, 0);
  t.regex(ctr(t, ['task', 'ls']).stdout, /ctr-d\s+\d+\s+PAUSED/);
  t.is(ctr(t, ['task', 'resume', 'ctr-d']).status, 0);
  t.regex(ctr(t, ['task', 'ls']).stdout, /ctr-d\s+\d+\s+RUNNING/);
  t.is(ctr(t, ['task', 'kill', '-s', 'KILL', 'ctr-d']).status, 0);
  // The task's exit is waited on by `task delete` itself (it fails while the task runs).
  await exited(pid);
  const del = ctr(t, ['task', 'delete', 'ctr-d']);
  t.is(del.status, 0, del.stderr);
  t.is(ctr(t, ['container', 'delete', 'ctr-d']).status, 0);
  t.false(existsSync(`/sys/fs/cgroup/memory${memCgroup}`));
});

rtest('ctr run -t: the process gets a terminal through --console-socket, its output reaches ctr', (t) => {
  // ctr -t needs a terminal of its own: script(1) gives it one.
  const cmd = ['ctr', '--address', t.context.sock, 'run', '-t', '--rm', ...runArgs('ctr-tty'), 'sh', '-c', 'test -t 0 && test -t 1 && echo tty-ok; exit 5'].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
  t.regex(r.stdout, /tty-ok/, r.stderr);
  t.is(r.status, 5);
  t.is(ctr(t, ['container', 'ls', '-q']).stdout, '');
});
