/**
 * nsbox-runc end to end (the C++ entry build/Release/nsbox-runc, which hands what it does not serve
 * to bin/nsbox-runc.js over dist/): the create/start/state/kill/delete lifecycle on a busybox bundle,
 * the console socket, exec, ps, pause/resume, hooks, runc's messages and exit codes for bad input,
 * and the per-call commands served without Node.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { native } from '../../lib/native.js';
import { defaultSpec } from '../../lib/oci/defaults.js';
import { collect, rootfs, skipIf } from './_helpers.js';
import { runcBin as bin, runcReason, type RuncCtx as Ctx } from './runc-fixture.js';

const test = anyTest as TestFn<Ctx>;
const reason = runcReason;
const rtest = skipIf(reason, test.serial);

/**
 * Runs nsbox-runc. A container's init inherits create's stdout and stderr (as runc's does), and
 * would hold pipes open past create's exit: create and start write to a file, read back as stderr.
 */
function runc(t: { context: Ctx }, args: string[], env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  const cmd = args.find((a) => !a.startsWith('-') && !a.includes('/'));
  if (cmd !== 'create' && cmd !== 'exec') return spawnSync(bin, ['--root', t.context.root, ...args], { encoding: 'utf8', timeout: 60_000, env });
  const file = join(t.context.dir, `io-${n++}`);
  const fd = openSync(file, 'w+');
  try {
    const r = spawnSync(bin, ['--root', t.context.root, ...args], { encoding: 'utf8', stdio: ['ignore', cmd === 'exec' && !args.includes('--detach') ? 'pipe' : fd, fd], timeout: 60_000, env });
    return { ...r, stderr: readFileSync(file, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

let n = 0;
/** A bundle on the busybox rootfs: runc's default spec with these process settings. */
function bundle(t: { context: Ctx }, proc: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const b = join(t.context.dir, `b${n++}`);
  mkdirSync(b);
  symlinkSync(rootfs(), join(b, 'rootfs'));
  const spec = defaultSpec() as { process: Record<string, unknown>; linux: Record<string, unknown> };
  const config = { ...spec, process: { ...spec.process, terminal: false, ...proc }, ...extra, linux: { ...spec.linux, cgroupsPath: `nsbox-runc-test/c${n}` } };
  writeFileSync(join(b, 'config.json'), JSON.stringify(config));
  return b;
}

const status = (t: { context: Ctx }, id: string) => JSON.parse(runc(t, ['state', id]).stdout).status as string;

/** Resolves when `pid` has exited (its pidfd becomes readable). */
function exited(pid: number): Promise<void> {
  const fd = native.pidfdOpen(pid);
  return new Promise((resolve) => native.watchExit(fd, () => resolve()));
}

test.before((t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'oci-runc-'));
  t.context.root = join(t.context.dir, 'state');
});
test.after.always((t) => {
  if (!t.context.root) return;
  // Whatever a failed test left running: deleted by force, so no process or cgroup stays.
  for (const id of existsSync(t.context.root) ? JSON.parse(runc(t, ['list', '--format', 'json']).stdout || '[]') as Array<{ id: string }> : []) runc(t, ['delete', '--force', id.id]);
  rmSync(t.context.dir, { recursive: true, force: true });
});

rtest('create blocks the init before execve; start runs it; kill, stopped, delete leaves nothing', async (t) => {
  const b = bundle(t, { args: ['sleep', '100'] });
  const pidFile = join(t.context.dir, 'life.pid');
  const c = runc(t, ['create', '--bundle', b, '--pid-file', pidFile, 'life']);
  t.is(c.status, 0, c.stderr);
  const state = JSON.parse(runc(t, ['state', 'life']).stdout);
  t.like(state, { ociVersion: '1.0.2', id: 'life', status: 'created', bundle: b, rootfs: join(b, 'rootfs') });
  t.regex(readFileSync(pidFile, 'utf8'), /^\d+$/);
  t.is(Number(readFileSync(pidFile, 'utf8')), state.pid);
  // Created: in its cgroup and namespaces, not yet the container's program.
  t.regex(readFileSync(`/proc/${state.pid}/cgroup`, 'utf8'), /nsbox-runc-test\/c\d+/);
  t.not(readFileSync(`/proc/${state.pid}/comm`, 'utf8').trim(), 'sleep');
  t.is(runc(t, ['start', 'life']).status, 0);
  t.is(status(t, 'life'), 'running');
  t.is(readFileSync(`/proc/${state.pid}/comm`, 'utf8').trim(), 'sleep');
  const list = JSON.parse(runc(t, ['list', '--format', 'json']).stdout);
  t.deepEqual(list.map((s: { id: string }) => s.id), ['life']);
  const gone = exited(state.pid);
  t.is(runc(t, ['kill', 'life', 'KILL']).status, 0);
  await gone;
  t.is(status(t, 'life'), 'stopped');
  const kill = runc(t, ['kill', 'life', '9']);
  t.is(kill.status, 1);
  t.regex(kill.stderr, /container not running/);
  t.is(runc(t, ['delete', 'life']).status, 0);
  t.false(existsSync(join(t.context.root, 'life')));
  t.regex(runc(t, ['state', 'life']).stderr, /container life does not exist/);
});

rtest('the init inherits fds 0-2: its output reaches the caller of create', async (t) => {
  const b = bundle(t, { args: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
  const create = spawn(bin, ['--root', t.context.root, 'create', '--bundle', b, 'io'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = collect(create.stdout);
  const err = collect(create.stderr);
  await new Promise((resolve) => create.on('exit', resolve));
  t.is(runc(t, ['start', 'io']).status, 0);
  // The pipes close when the init (their last holder) exits.
  t.is(await out, 'out\n');
  t.is(await err, 'err\n');
  t.is(runc(t, ['delete', '--force', 'io']).status, 0);
});

rtest('a terminal: the pty master goes to --console-socket (SCM_RIGHTS), the process is on the pty', async (t) => {
  const sock = join(t.context.dir, 'console.sock');
  // A receiver of the fd: Node's net has no SCM_RIGHTS, python's socket does.
  const py = spawn('python3', ['-c', `
import socket, os, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print('ready', flush=True)
c, _ = s.accept(); msg, fds, _, _ = socket.recv_fds(c, 1024, 1)
data = b''
while b'tty-ok' not in data:
    chunk = os.read(fds[0], 1024)
    if not chunk: break
    data += chunk
print(msg.decode(), data.decode().strip(), flush=True)
`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  const output = collect(py.stdout);
  await new Promise((resolve) => py.stdout.once('data', resolve));
  const b = bundle(t, { terminal: true, args: ['sh', '-c', 'test -t 0 && echo tty-ok; sleep 100'] });
  const c = runc(t, ['create', '--bundle', b, '--console-socket', sock, 'tty']);
  t.is(c.status, 0, c.stderr);
  t.is(runc(t, ['start', 'tty']).status, 0);
  t.regex(await output, /\n\/dev\/pts\/\d+ .*tty-ok/);
  t.is(runc(t, ['delete', '--force', 'tty']).status, 0);
});

rtest('exec: a process in the running container (exit code, env, cwd), detached with a pid file; ps; pause and resume', async (t) => {
  const b = bundle(t, { args: ['sleep', '100'] });
  t.is(runc(t, ['create', '--bundle', b, 'ex']).status, 0);
  t.is(runc(t, ['start', 'ex']).status, 0);
  const e = runc(t, ['exec', '--env', 'X=42', '--cwd', '/tmp', 'ex', 'sh', '-c', 'echo $X $(pwd) $(hostname); exit 7']);
  t.is(e.stdout, '42 /tmp nsbox\n');
  t.is(e.status, 7);
  const proc = join(t.context.dir, 'process.json');
  writeFileSync(proc, JSON.stringify({ args: ['sh', '-c', 'echo from-process-file'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] }));
  t.is(runc(t, ['exec', '--process', proc, 'ex']).stdout, 'from-process-file\n');
  const pidFile = join(t.context.dir, 'exec.pid');
  t.is(runc(t, ['exec', '--detach', '--pid-file', pidFile, 'ex', 'sleep', '50']).status, 0);
  const execPid = Number(readFileSync(pidFile, 'utf8'));
  const pids = JSON.parse(runc(t, ['ps', '--format', 'json', 'ex']).stdout) as number[];
  t.true(pids.includes(execPid));
  t.true(pids.includes(JSON.parse(runc(t, ['state', 'ex']).stdout).pid));
  t.is(runc(t, ['pause', 'ex']).status, 0);
  t.is(status(t, 'ex'), 'paused');
  t.regex(runc(t, ['exec', 'ex', 'true']).stderr, /paused/);
  t.is(runc(t, ['resume', 'ex']).status, 0);
  t.is(status(t, 'ex'), 'running');
  t.regex(runc(t, ['resume', 'ex']).stderr, /container not paused/);
  t.is(runc(t, ['delete', '--force', 'ex']).status, 0);
  t.throws(() => process.kill(execPid, 0), { code: 'ESRCH' }, 'delete --force ends every process of the container');
});

rtest('hooks get the state on stdin: prestart and poststart at create and start, poststop at delete', (t) => {
  const log = join(t.context.dir, 'hooks.log');
  const hook = (name: string) => [{ path: '/bin/sh', args: ['sh', '-c', `(echo ${name}; cat; echo) >> ${log}`] }];
  const b = bundle(t, { args: ['sleep', '100'] }, { hooks: { prestart: hook('prestart'), poststart: hook('poststart'), poststop: hook('poststop') } });
  t.is(runc(t, ['create', '--bundle', b, 'hk']).status, 0);
  t.regex(readFileSync(log, 'utf8'), /^prestart\n\{.*"id":"hk".*"status":"created"/);
  t.is(runc(t, ['start', 'hk']).status, 0);
  t.is(runc(t, ['delete', '--force', 'hk']).status, 0);
  t.deepEqual(readFileSync(log, 'utf8').split('\n').filter((l) => /^[a-z]+$/.test(l)), ['prestart', 'poststart', 'poststop']);
});

rtest("bad input: runc's messages and exit codes, and nothing is left by a failed create", (t) => {
  const missing = runc(t, ['create', '--bundle', join(t.context.dir, 'nope'), 'x1']);
  t.is(missing.status, 1);
  t.regex(missing.stderr, /bundle .* does not exist/);
  const bad = join(t.context.dir, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', root: { path: 'rootfs' }, process: { args: 'sh', cwd: '/' } }));
  const invalid = runc(t, ['--log', join(t.context.dir, 'log.json'), '--log-format', 'json', 'create', '--bundle', bad, 'x2']);
  t.is(invalid.status, 1);
  t.regex(invalid.stderr, /invalid config\.json: process\.args/);
  t.false(existsSync(join(t.context.root, 'x2')), 'nothing is created for an invalid config');
  t.like(JSON.parse(readFileSync(join(t.context.dir, 'log.json'), 'utf8').trim()), { level: 'error' });
  t.regex(JSON.parse(readFileSync(join(t.context.dir, 'log.json'), 'utf8').trim()).msg, /invalid config\.json/);
  const b = bundle(t, { args: ['sleep', '100'] });
  t.is(runc(t, ['create', '--bundle', b, 'dup']).status, 0);
  const dup = runc(t, ['create', '--bundle', b, 'dup']);
  t.is(dup.status, 1);
  t.regex(dup.stderr, /container with id exists: dup/);
  t.is(runc(t, ['start', 'dup']).status, 0);
  const again = runc(t, ['start', 'dup']);
  t.is(again.status, 1);
  t.regex(again.stderr, /cannot start an already running container/);
  const del = runc(t, ['delete', 'dup']);
  t.is(del.status, 1);
  t.regex(del.stderr, /cannot delete container dup that is not stopped: running/);
  t.is(status(t, 'dup'), 'running');
  t.is(runc(t, ['delete', '--force', 'dup']).status, 0);
  t.is(runc(t, ['delete', '--force', 'never-was']).status, 0, 'a forced delete of a missing container succeeds, as runc');
  t.regex(runc(t, ['--systemd-cgroup', 'state', 'x']).stderr, /--systemd-cgroup is not supported/);
  t.regex(runc(t, ['--version']).stdout, /^nsbox-runc version .*\nspec: 1\.0\.2\n$/);
  t.like(JSON.parse(runc(t, ['features']).stdout), { ociVersionMin: '1.0.0' });
});

rtest('state, start, ps, pause, resume, kill and delete are served by the C++ entry without Node', async (t) => {
  const b = bundle(t, { args: ['sleep', '100'] });
  t.is(runc(t, ['create', '--bundle', b, 'fast']).status, 0);
  // A "node" that fails at once: a command handed to Node exits 1 with no output.
  const noNode = { ...process.env, NSBOX_NODE: '/bin/false', PATH: '/nonexistent' };
  t.is(runc(t, ['list'], noNode).status, 1, 'list goes to Node (and so fails here)');
  const created = JSON.parse(runc(t, ['state', 'fast'], noNode).stdout);
  t.like(created, { ociVersion: '1.0.2', id: 'fast', status: 'created', bundle: b });
  t.deepEqual(Object.keys(created), ['ociVersion', 'id', 'pid', 'status', 'bundle', 'rootfs', 'created', 'owner']);
  t.is(runc(t, ['start', 'fast'], noNode).status, 0);
  t.is(JSON.parse(runc(t, ['state', 'fast'], noNode).stdout).status, 'running');
  t.deepEqual(JSON.parse(runc(t, ['ps', '--format', 'json', 'fast'], noNode).stdout), [created.pid]);
  const again = runc(t, ['start', 'fast'], noNode);
  t.is(again.status, 1);
  t.is(again.stderr, 'cannot start an already running container\n');
  t.is(runc(t, ['pause', 'fast'], noNode).status, 0);
  t.is(JSON.parse(runc(t, ['state', 'fast'], noNode).stdout).status, 'paused');
  t.regex(readFileSync(`/proc/${created.pid}/status`, 'utf8'), /State:\s+[DS]/);
  t.is(runc(t, ['resume', 'fast'], noNode).status, 0);
  const log = join(t.context.dir, 'fast-log.json');
  const del = runc(t, ['--log', log, '--log-format', 'json', 'delete', 'fast'], noNode);
  t.is(del.status, 1);
  t.like(JSON.parse(readFileSync(log, 'utf8')), { level: 'error', msg: 'cannot delete container fast that is not stopped: running' });
  const gone = exited(created.pid);
  t.is(runc(t, ['kill', 'fast', 'kill'], noNode).status, 0);
  await gone;
  t.like(JSON.parse(runc(t, ['state', 'fast'], noNode).stdout), { status: 'stopped', pid: 0 });
  t.is(runc(t, ['kill', 'fast', 'TERM'], noNode).stderr, 'container not running\n');
  t.is(runc(t, ['delete', 'fast'], noNode).status, 0);
  t.false(existsSync(join(t.context.root, 'fast')));
  t.regex(runc(t, ['state', 'fast']).stderr, /container fast does not exist/);
});

rtest('the C++ entry: a stopped init fails start fast; delete --force kills a created container and removes its cgroup', async (t) => {
  const b = bundle(t, { args: ['sleep', '100'] });
  t.is(runc(t, ['create', '--bundle', b, 'dies']).status, 0);
  const noNode = { ...process.env, NSBOX_NODE: '/bin/false', PATH: '/nonexistent' };
  const { pid } = JSON.parse(runc(t, ['state', 'dies'], noNode).stdout) as { pid: number };
  const cgroupLine = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /:pids:|^0::/.test(l))!;
  const gone = exited(pid);
  process.kill(pid, 'SIGKILL');
  await gone;
  const start = runc(t, ['start', 'dies'], noNode);
  t.is(start.status, 1);
  t.is(start.stderr, 'cannot start a container that has stopped\n');
  t.is(runc(t, ['delete', 'dies'], noNode).status, 0);
  t.true(cgroupLine.includes('nsbox-runc-test'));
  const b2 = bundle(t, { args: ['sleep', '100'] });
  t.is(runc(t, ['create', '--bundle', b2, 'forced']).status, 0);
  const st = JSON.parse(runc(t, ['state', 'forced'], noNode).stdout) as { pid: number };
  const dirs = readFileSync(`/proc/${st.pid}/cgroup`, 'utf8').trim().split('\n').map((l) => l.split(':')).filter(([, c, p]) => p!.includes('nsbox-runc-test') && (c === 'pids' || c === ''));
  const gone2 = exited(st.pid);
  t.is(runc(t, ['delete', '--force', 'forced'], noNode).status, 0);
  await gone2;
  for (const [, c, p] of dirs) t.false(existsSync(join('/sys/fs/cgroup', c === '' ? (existsSync('/sys/fs/cgroup/unified') ? 'unified' : '') : c, p!)), `${c || 'unified'} cgroup ${p} removed`);
  t.true(dirs.length > 0);
});

// strace delays each read(2) of start by 300 ms: the released init writes its byte, runs `true`
// and exits before start reads anything. Start looked at the init after releasing it, found it a
// zombie (or reaped by the shim) and said "stopped": about 1 ctr run --rm in 100 on a busy host.
const strace = spawnSync('sh', ['-c', 'command -v strace'], { encoding: 'utf8' }).stdout.trim();
skipIf(reason ?? (strace ? undefined : 'strace is not installed (test/install-deps.sh)'), test.serial)('the C++ entry: start succeeds when the released init has already run and exited by the time start looks', async (t) => {
  const b = bundle(t, { args: ['true'] });
  const pidFile = join(t.context.dir, 'quick.pid');
  t.is(runc(t, ['create', '--bundle', b, '--pid-file', pidFile, 'quick']).status, 0);
  const gone = exited(Number(readFileSync(pidFile, 'utf8')));
  const noNode = { ...process.env, NSBOX_NODE: '/bin/false', PATH: '/nonexistent' };
  const start = spawnSync(strace, ['-o', '/dev/null', '-e', 'trace=read', '-e', 'inject=read:delay_enter=300000', bin, '--root', t.context.root, 'start', 'quick'], { encoding: 'utf8', env: noNode, timeout: 60_000 });
  t.is(start.status, 0, String(start.stderr ?? start.error));
  await gone;
  t.like(JSON.parse(runc(t, ['state', 'quick'], noNode).stdout), { status: 'stopped' });
  t.is(runc(t, ['delete', 'quick'], noNode).status, 0);
});

rtest('run: the init\'s exit status every time, also when it exits the moment it is started (no second watch reaps it)', (t) => {
  const b = bundle(t, { args: ['sh', '-c', 'exit 3'] });
  // Each start raced a watch of its own that reaped the init: about 1 run in 8 exited 255.
  const codes = Array.from({ length: 20 }, (_, i) => runc(t, ['run', '--bundle', b, `fast${i}`]).status);
  t.deepEqual(codes, Array.from({ length: 20 }, () => 3));
});

// The unshare of the cgroup namespace is among the init's first steps: it must come after the move
// into its v1 cgroups that its creator makes (cpp/spawn-core.cc), or the namespace is rooted above them.
rtest("a cgroup namespace is rooted at the container's cgroups (its unshare comes after the init's move into them)", (t) => {
  const b = bundle(t, { args: ['cat', '/proc/self/cgroup'] });
  for (let i = 0; i < 3; i++) {
    const r = runc(t, ['run', '--bundle', b, `cgns${i}`]);
    t.is(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => /^\d+:/.test(l));
    t.true(lines.length > 0, r.stdout);
    for (const line of lines) t.true(line.endsWith(':/'), line);
  }
});

rtest('linux.personality LINUX32: the container sees a 32-bit machine (uname -m)', (t) => {
  const b = bundle(t, { args: ['uname', '-m'] });
  const cfgFile = join(b, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { linux: Record<string, unknown> };
  cfg.linux.personality = { domain: 'LINUX32' };
  writeFileSync(cfgFile, JSON.stringify(cfg));
  const r = runc(t, ['run', '--bundle', b, 'p32']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^i[3-6]86\n$/);
  t.false(existsSync(join(t.context.root, 'p32')));
});

rtest('--preserve-fds N: the caller fd 3 reaches the process; without it, fd 3 is closed in the container', (t) => {
  const file = join(t.context.dir, 'passed.txt');
  writeFileSync(file, 'through fd 3\n');
  const fd = openSync(file, 'r');
  try {
    const run = (id: string, extra: string[]) => spawnSync(bin, ['--root', t.context.root, 'run', ...extra, '--bundle', bundle(t, { args: ['sh', '-c', 'cat <&3'] }), id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', fd], timeout: 60_000 });
    const kept = run('pf1', ['--preserve-fds', '1']);
    t.is(kept.status, 0, kept.stderr);
    t.is(kept.stdout, 'through fd 3\n');
    const closed = run('pf2', []);
    t.not(closed.status, 0);
    t.regex(closed.stderr, /3|bad file/i);
    t.is(closed.stdout, '');
    const bad = spawnSync(bin, ['--root', t.context.root, 'run', '--preserve-fds', '4', '--bundle', bundle(t, { args: ['true'] }), 'pf3'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', fd] });
    t.is(bad.status, 1);
    t.regex(bad.stderr, /--preserve-fds 4: fd 4 is not open/);
  } finally {
    closeSync(fd);
  }
});

/** A bundle whose config.json is then changed by `edit`. */
function editedBundle(t: { context: Ctx }, proc: Record<string, unknown>, edit: (cfg: { linux: Record<string, unknown> }) => void): string {
  const b = bundle(t, proc);
  const cfgFile = join(b, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { linux: Record<string, unknown> };
  edit(cfg);
  writeFileSync(cfgFile, JSON.stringify(cfg));
  return b;
}

const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

rtest('linux.timeOffsets: a time namespace whose boottime is ahead by the offset (/proc/uptime), and exec joins it', async (t) => {
  const OFFSET = 1_000_000;
  const edit = (cfg: { linux: Record<string, unknown> }) => {
    cfg.linux.namespaces = [...(cfg.linux.namespaces as object[]), { type: 'time' }];
    cfg.linux.timeOffsets = { boottime: { secs: OFFSET, nanosecs: 0 }, monotonic: { secs: 2 * OFFSET } };
  };
  const before = uptime();
  const r = runc(t, ['run', '--bundle', editedBundle(t, { args: ['cat', '/proc/uptime'] }, edit), 'tns']);
  const after = uptime();
  t.is(r.status, 0, r.stderr);
  const inside = Number(r.stdout.split(' ')[0]);
  // The container's uptime is the host's, read between the two host reads, plus the offset.
  t.true(inside >= before + OFFSET && inside <= after + OFFSET, `${before} ≤ ${inside} - ${OFFSET} ≤ ${after}`);

  const c = runc(t, ['create', '--bundle', editedBundle(t, { args: ['sleep', '100'] }, edit), 'tns2']);
  t.is(c.status, 0, c.stderr);
  t.is(runc(t, ['start', 'tns2']).status, 0);
  const pid = JSON.parse(runc(t, ['state', 'tns2']).stdout).pid as number;
  const e = runc(t, ['exec', 'tns2', 'cat', '/proc/uptime']);
  t.is(e.status, 0, e.stderr);
  t.true(Number(e.stdout.split(' ')[0]) >= before + OFFSET, e.stdout);
  t.is(runc(t, ['kill', 'tns2', 'KILL']).status, 0);
  await exited(pid);
  t.is(runc(t, ['delete', 'tns2']).status, 0);
  const bad = runc(t, ['run', '--bundle', editedBundle(t, { args: ['true'] }, (cfg) => (cfg.linux.timeOffsets = { boottime: { secs: 1 } })), 'tns3']);
  t.is(bad.status, 1);
  t.regex(bad.stderr, /timeOffsets: needs a new time namespace/);
});

rtest("a pid namespace by path: the second container is born in the first's (its /proc shows the first's pid 1), not as its pid 1", async (t) => {
  const c = runc(t, ['create', '--bundle', bundle(t, { args: ['sleep', '100'] }), 'pidowner']);
  t.is(c.status, 0, c.stderr);
  t.is(runc(t, ['start', 'pidowner']).status, 0);
  const pid = JSON.parse(runc(t, ['state', 'pidowner']).stdout).pid as number;
  const joiner = editedBundle(t, { args: ['sh', '-c', 'cat /proc/1/comm; echo $$'] }, (cfg) => {
    cfg.linux.namespaces = (cfg.linux.namespaces as Array<{ type: string }>).map((n) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${pid}/ns/pid` } : n));
  });
  const r = runc(t, ['run', '--bundle', joiner, 'pidjoiner']);
  t.is(r.status, 0, r.stderr);
  const [comm, own] = r.stdout.trim().split('\n');
  t.is(comm, 'sleep');
  t.true(Number(own) > 1, r.stdout);
  const missing = editedBundle(t, { args: ['true'] }, (cfg) => {
    cfg.linux.namespaces = (cfg.linux.namespaces as Array<{ type: string }>).map((n) => (n.type === 'pid' ? { type: 'pid', path: join(t.context.dir, 'no-such-ns') } : n));
  });
  const bad = runc(t, ['run', '--bundle', missing, 'pidbad']);
  t.is(bad.status, 1);
  t.regex(bad.stderr, /no-such-ns/);
  t.is(runc(t, ['kill', 'pidowner', 'KILL']).status, 0);
  await exited(pid);
  t.is(runc(t, ['delete', 'pidowner']).status, 0);
});

rtest('linux.resources.hugepageLimits: the limit on the container cgroup where a hugetlb controller reaches it, a clear refusal where none does', async (t) => {
  const sizes = readdirSync('/sys/kernel/mm/hugepages').map((d) => /^hugepages-(\d+)kB$/.exec(d)?.[1]).filter((k): k is string => k !== undefined);
  if (sizes.length === 0) return t.log('no huge page pools on this kernel: nothing to limit');
  const kb = Number(sizes[0]);
  const size = kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1024 ? `${kb >> 10}MB` : `${kb}KB`;
  const limit = 4 * kb * 1024;
  const b = editedBundle(t, { args: ['sleep', '100'] }, (cfg) => {
    cfg.linux.resources = { hugepageLimits: [{ pageSize: size, limit }] };
  });
  const c = runc(t, ['create', '--bundle', b, 'huge']);
  if (c.status !== 0) {
    // Neither a v1 hugetlb hierarchy nor a unified one that delegates hugetlb to nsbox's cgroup.
    t.regex(c.stderr, /hugetlb controller is not/);
    t.false(existsSync(join(t.context.root, 'huge')));
    return;
  }
  const pid = JSON.parse(runc(t, ['state', 'huge']).stdout).pid as number;
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1]!.split(',').includes('hugetlb'));
  const file = v1 ? `/sys/fs/cgroup/hugetlb${v1.split(':')[2]}/hugetlb.${size}.limit_in_bytes` : `${existsSync('/sys/fs/cgroup/unified') ? '/sys/fs/cgroup/unified' : '/sys/fs/cgroup'}${lines.find((l) => l.startsWith('0::'))!.slice(3)}/hugetlb.${size}.max`;
  t.is(readFileSync(file, 'utf8').trim(), String(limit));
  t.is(runc(t, ['delete', '--force', 'huge']).status, 0);
});

const noDevices = reason ?? (['/sys/fs/cgroup/devices/devices.list', '/sys/fs/cgroup/cgroup.controllers', '/sys/fs/cgroup/unified'].some((f) => existsSync(f)) ? undefined : 'neither a cgroup v1 devices hierarchy nor a cgroup2 one (where the rules are an eBPF program)');
skipIf(noDevices, test.serial)('linux.resources.devices (v1 rules or a v2 eBPF program): a node the rules deny cannot be opened, one they allow and the default nodes can', (t) => {
  const caps = ['CAP_MKNOD'];
  // 240 and 241 have no driver: opened where allowed they fail with ENXIO, where denied with EPERM.
  const b = editedBundle(t, { args: ['sh', '-c', 'mknod /dev/d0 c 240 0; mknod /dev/d1 c 241 0; cat /dev/d0; cat /dev/d1; echo x > /dev/null && echo null-ok'], capabilities: { bounding: caps, effective: caps, permitted: caps } }, (cfg) => {
    cfg.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 241, minor: 0, access: 'rw' }] };
  });
  const r = runc(t, ['run', '--bundle', b, 'devrules']);
  t.is(r.stdout, 'null-ok\n', r.stderr);
  t.regex(r.stderr, /d0': Operation not permitted/);
  t.regex(r.stderr, /d1': No such device or address/);
});

rtest('no mount namespace: the init, chrooted without a /proc of its own, still waits for start and runs', (t) => {
  const b = editedBundle(t, { args: ['echo', 'chrooted'] }, (cfg) => {
    cfg.linux.namespaces = [{ type: 'pid' }, { type: 'uts' }];
  });
  const r = runc(t, ['run', '--bundle', b, 'nomntns']);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'chrooted\n');
});

rtest('a user namespace whose root is an unprivileged host uid: the init still opens the exec fifo at start', (t) => {
  // The mapped root must be able to reach its bundle (mkdtemp made the test dir 0700).
  chmodSync(t.context.dir, 0o711);
  const b = editedBundle(t, { args: ['sh', '-c', 'id -u; cat /proc/self/uid_map'] }, (cfg) => {
    cfg.linux.namespaces = [...(cfg.linux.namespaces as object[]), { type: 'user' }];
    cfg.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    cfg.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  });
  const r = runc(t, ['run', '--bundle', b, 'userns']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^0\n\s+0\s+100000\s+65536\n$/);
});

/** A user namespace mapping container 0.. to host 100000..: the maps of the idmapped mount tests. */
const mapped100000 = (cfg: { linux: Record<string, unknown> }) => {
  cfg.linux.namespaces = [...(cfg.linux.namespaces as object[]), { type: 'user' }];
  cfg.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  cfg.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
};

rtest('idmapped mounts: a dir of host uid 1000 mapped to the container\'s root shows as 0:0 and what root makes there lands as 1000; idmap alone takes the container\'s maps', async (t) => {
  chmodSync(t.context.dir, 0o711);
  const owned = join(t.context.dir, 'owned-1000');
  mkdirSync(owned);
  writeFileSync(join(owned, 'f'), 'x');
  for (const p of [owned, join(owned, 'f')]) chownSync(p, 1000, 1000);
  const rootOwned = join(t.context.dir, 'owned-0');
  mkdirSync(rootOwned);
  // Files of host uid 1000 are seen as host 100000, which the container's namespace shows as its root.
  const to100000 = [{ containerID: 1000, hostID: 100000, size: 1 }];
  const b = editedBundle(t, { args: ['sh', '-c', 'stat -c %u:%g /home /home/f /tmp /var; touch /home/made /tmp/made'] }, (cfg) => {
    mapped100000(cfg);
    (cfg as unknown as { mounts: object[] }).mounts.push(
      { destination: '/home', type: 'bind', source: owned, options: ['bind', 'idmap'], uidMappings: to100000, gidMappings: to100000 },
      { destination: '/tmp', type: 'bind', source: rootOwned, options: ['rbind', 'idmap'] },
      { destination: '/var', type: 'bind', source: rootOwned, options: ['rbind'] },
    );
  });
  // Twice: the first create compiles the plan in Node, the second is served by the C++ plan cache
  // (the id in cgroupsPath, as containerd's: an entry with the id as a parameter; a hit rewrites none).
  const plans = () => readdirSync(join(t.context.root, '.plans')).map((f) => `${f} ${statSync(join(t.context.root, '.plans', f)).ino}`).sort();
  let cached: string[] = [];
  for (const id of ['idmap1', 'idmap2']) {
    const cfgFile = join(b, 'config.json');
    writeFileSync(cfgFile, readFileSync(cfgFile, 'utf8').replace(/"cgroupsPath":"[^"]*"/, `"cgroupsPath":"nsbox-runc-test/${id}"`));
    const out = join(t.context.dir, `${id}.out`);
    const fd = openSync(out, 'w+');
    const c = spawnSync(bin, ['--root', t.context.root, 'create', '--bundle', b, id], { encoding: 'utf8', stdio: ['ignore', fd, fd], timeout: 60_000 });
    closeSync(fd);
    t.is(c.status, 0, readFileSync(out, 'utf8'));
    const pid = JSON.parse(runc(t, ['state', id]).stdout).pid as number;
    const done = exited(pid);
    t.is(runc(t, ['start', id]).status, 0);
    await done;
    // /var, the same dir without idmapping: root of the host is no id of the container's (overflow).
    t.is(readFileSync(out, 'utf8'), '0:0\n0:0\n0:0\n65534:65534\n', id);
    t.is(runc(t, ['delete', id]).status, 0);
    for (const [dir, owner] of [[owned, 1000], [rootOwned, 0]] as const) {
      const st = statSync(join(dir, 'made'));
      t.deepEqual([st.uid, st.gid], [owner, owner], `${dir}/made`);
      rmSync(join(dir, 'made'));
    }
    if (id === 'idmap1') cached = plans();
  }
  t.deepEqual(plans(), cached, 'the second create was a hit');
});

rtest('the plan cache: a second id from the same bundle and config (no id in it) is created from the cache with its own state', (t) => {
  const b = bundle(t, { args: ['true'] });
  // After the first create (Node), the others are cache hits: a "node" that fails would fail them
  // (no cache without the runc bundle: Node then creates each).
  const cached = existsSync(fileURLToPath(new URL('../../dist/runc-bundle/nsbox-runc.cjs', import.meta.url)));
  const noNode = cached ? { ...process.env, NSBOX_NODE: '/bin/false', PATH: '/nonexistent' } : process.env;
  for (const [i, id] of ['sameb1', 'sameb2', 'sameb3'].entries()) {
    const c = runc(t, ['create', '--bundle', b, id], i ? noNode : process.env);
    t.is(c.status, 0, c.stderr);
    const st = JSON.parse(runc(t, ['state', id]).stdout) as { id: string; pid: number; status: string };
    t.like(st, { id, status: 'created' });
    t.true(st.pid > 0);
    t.is(runc(t, ['delete', '--force', id]).status, 0);
  }
});

rtest('idmapped mounts: a file system that cannot be idmapped (proc) is a clear error naming the mount, and nothing is left', (t) => {
  chmodSync(t.context.dir, 0o711);
  const b = editedBundle(t, { args: ['true'] }, (cfg) => {
    mapped100000(cfg);
    (cfg as unknown as { mounts: object[] }).mounts.push({ destination: '/home', type: 'bind', source: '/proc/sys', options: ['rbind', 'idmap'] });
  });
  const r = runc(t, ['create', '--bundle', b, 'idmapproc']);
  t.not(r.status, 0);
  t.regex(r.stderr, /mounts\.\d+ \(\/home\): the file system of \/proc\/sys cannot be idmapped \(its type has no idmapped mounts on this kernel\): idmapped bind \/proc\/sys on .*: mount_setattr MOUNT_ATTR_IDMAP: EINVAL/);
  t.false(existsSync(join(t.context.root, 'idmapproc')));
});
