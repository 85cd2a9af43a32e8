/**
 * nsbox-runc's seccomp, end to end on a busybox bundle: the actions the kernel has (ERRNO with its
 * errno, KILL_PROCESS, TRAP, LOG, ALLOW), the filter flags, and SCMP_ACT_NOTIFY: the listener fd and
 * the container process state reach a seccomp agent on `listenerPath` during create (and exec), and
 * the agent's answers are what the container's syscalls return. The agent is
 * test/fixtures/seccomp-agent.py (Node has neither ioctl nor SCM_RIGHTS).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { native } from '../../lib/native.js';
import { defaultSpec } from '../../lib/oci/defaults.js';
import { SYSCALLS, hostSeccompArch } from '../../lib/runtime/seccomp/index.js';
import { rootfs, skipIf } from './_helpers.js';
import { runcBin as bin, runcReason, type RuncCtx as Ctx } from './runc-fixture.js';

const test = anyTest as TestFn<Ctx>;
const agentScript = fileURLToPath(new URL('../fixtures/seccomp-agent.py', import.meta.url));
const python = spawnSync('python3', ['-c', 'import fcntl, socket'], { encoding: 'utf8' }).status === 0;
const arch = hostSeccompArch();
const reason = runcReason ?? (!arch ? `no syscall table for ${process.arch}` : undefined);
const rtest = skipIf(reason, test.serial);
const atest = skipIf(reason ?? (python ? undefined : 'the seccomp agent needs python3'), test.serial);

let n = 0;
/** Runs nsbox-runc; create's and exec's stdout and stderr (which the init inherits) go to a file, returned as `out`. */
function runc(t: { context: Ctx }, args: string[]): SpawnSyncReturns<string> & { file: string } {
  const file = join(t.context.dir, `io-${n++}`);
  const fd = openSync(file, 'w+');
  try {
    const r = spawnSync(bin, ['--root', t.context.root, ...args], { encoding: 'utf8', stdio: ['ignore', fd, fd], timeout: 60_000 });
    return { ...r, stdout: readFileSync(file, 'utf8'), file };
  } finally {
    closeSync(fd);
  }
}

function bundle(t: { context: Ctx }, args: string[], seccomp: Record<string, unknown>, edit?: (linux: Record<string, unknown>) => void): string {
  const b = join(t.context.dir, `b${n++}`);
  mkdirSync(b);
  symlinkSync(rootfs(), join(b, 'rootfs'));
  const spec = defaultSpec() as { process: Record<string, unknown>; linux: Record<string, unknown> };
  const config = { ...spec, annotations: { 'test.nsbox': 'seccomp' }, process: { ...spec.process, terminal: false, args }, linux: { ...spec.linux, seccomp, cgroupsPath: `nsbox-runc-test/s${n}` } };
  edit?.(config.linux);
  writeFileSync(join(b, 'config.json'), JSON.stringify(config));
  return b;
}

const nr = (name: string) => SYSCALLS[arch!][name]!;

/** Resolves when `pid` has exited (its pidfd becomes readable). */
function exited(pid: number): Promise<void> {
  const fd = native.pidfdOpen(pid);
  return new Promise((resolve) => native.watchExit(fd, () => resolve()));
}

/** create + start; resolves with the init's output once it has exited. */
async function runToEnd(t: ExecutionContext<Ctx>, id: string, b: string): Promise<{ out: string; create: SpawnSyncReturns<string> }> {
  const create = runc(t, ['create', '--bundle', b, id]);
  if (create.status !== 0) return { out: create.stdout, create };
  const pid = JSON.parse(spawnSync(bin, ['--root', t.context.root, 'state', id], { encoding: 'utf8' }).stdout).pid as number;
  const gone = exited(pid);
  t.is(spawnSync(bin, ['--root', t.context.root, 'start', id]).status, 0);
  await gone;
  const out = readFileSync(create.file, 'utf8');
  t.is(spawnSync(bin, ['--root', t.context.root, 'delete', id]).status, 0);
  return { out, create };
}

/** The agent, and its JSON lines one by one. */
function startAgent(sock: string, errno: number, fail: number[]): { proc: ChildProcess; next: () => Promise<Record<string, unknown>> } {
  const proc = spawn('python3', [agentScript, sock, String(errno), fail.join(',')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const next = () => new Promise<Record<string, unknown>>((resolve) => {
    const l = lines.shift();
    if (l !== undefined) resolve(JSON.parse(l));
    else waiting.push((x) => resolve(JSON.parse(x)));
  });
  return { proc, next };
}

test.before((t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'oci-seccomp-'));
  t.context.root = join(t.context.dir, 'state');
});
test.after.always((t) => {
  if (!t.context.root) return;
  const list = existsSync(t.context.root) ? spawnSync(bin, ['--root', t.context.root, 'list', '--format', 'json'], { encoding: 'utf8' }).stdout : '';
  for (const c of JSON.parse(list || '[]') as Array<{ id: string }>) spawnSync(bin, ['--root', t.context.root, 'delete', '--force', c.id]);
  rmSync(t.context.dir, { recursive: true, force: true });
});

rtest('the actions: ERRNO with its errno, KILL_PROCESS, TRAP, LOG and ALLOW; the filter flags', async (t) => {
  const b = bundle(t, ['sh', '-c', 'mkdir /tmp/d; echo mkdir=$?; (hostname x); echo hostname=$?; (sync); echo sync=$?; pwd; echo ok'], {
    defaultAction: 'SCMP_ACT_ALLOW',
    flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'],
    syscalls: [
      { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 18 },
      { names: ['sethostname'], action: 'SCMP_ACT_KILL_PROCESS' },
      { names: ['sync'], action: 'SCMP_ACT_TRAP' },
      { names: ['getcwd'], action: 'SCMP_ACT_LOG' },
    ],
  });
  const { out, create } = await runToEnd(t, 'actions', b);
  t.is(create.status, 0, out);
  // EXDEV (18); a process killed by SIGSYS (31) exits 128+31 in the shell's eyes, by KILL_PROCESS or TRAP.
  t.regex(out, /mkdir: can't create directory '\/tmp\/d': (Invalid cross-device link|Cross-device link)\nmkdir=1\n/);
  t.regex(out, /hostname=159\n/);
  t.regex(out, /sync=159\n/);
  t.regex(out, /\/\nok\n$/, 'LOG allows getcwd');
});

rtest('SCMP_ACT_NOTIFY without listenerPath is refused before anything is created', (t) => {
  const b = bundle(t, ['true'], { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] });
  const r = runc(t, ['create', '--bundle', b, 'nolistener']);
  t.is(r.status, 1);
  t.regex(r.stdout, /SCMP_ACT_NOTIFY needs listenerPath/);
  t.false(existsSync(join(t.context.root, 'nolistener')));
});

rtest('SCMP_ACT_NOTIFY with no agent listening: create fails, naming the socket, and leaves nothing', (t) => {
  const sock = join(t.context.dir, 'nobody.sock');
  const b = bundle(t, ['true'], { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: sock, syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] });
  const r = runc(t, ['create', '--bundle', b, 'noagent']);
  t.is(r.status, 1);
  t.true(r.stdout.includes(`connect ${sock}`), r.stdout);
  t.regex(r.stdout, /ENOENT/);
  t.false(existsSync(join(t.context.root, 'noagent')));
});

atest('SCMP_ACT_NOTIFY: the agent gets the listener and the state during create; its answers are what mkdir returns', async (t) => {
  const sock = join(t.context.dir, 'agent.sock');
  // EPERM through the agent for mkdir; chmod is let through (CONTINUE).
  const agent = startAgent(sock, 1, [nr('mkdir'), nr('mkdirat')]);
  try {
    t.like(await agent.next(), { ready: true });
    const b = bundle(t, ['sh', '-c', 'mkdir /tmp/n; echo mkdir=$?; chmod 700 /dev/shm; echo chmod=$?; stat -c %a /dev/shm'], {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: sock,
      listenerMetadata: 'agent metadata',
      syscalls: [
        { names: ['mkdir', 'mkdirat', 'chmod', 'fchmodat', 'fchmodat2'], action: 'SCMP_ACT_NOTIFY' },
      ],
    });
    const create = runc(t, ['create', '--bundle', b, 'notify']);
    t.is(create.status, 0, create.stdout);
    const state = JSON.parse(spawnSync(bin, ['--root', t.context.root, 'state', 'notify'], { encoding: 'utf8' }).stdout);
    // The agent had the listener before create returned.
    const got = await agent.next();
    t.deepEqual(got, {
      fds: 1,
      state: {
        ociVersion: state.ociVersion,
        fds: ['seccompFd'],
        pid: state.pid,
        metadata: 'agent metadata',
        state: { ociVersion: state.ociVersion, id: 'notify', status: 'creating', pid: state.pid, bundle: b, annotations: { 'test.nsbox': 'seccomp' } },
      },
    });
    const gone = exited(state.pid);
    t.is(spawnSync(bin, ['--root', t.context.root, 'start', 'notify']).status, 0);
    await gone;
    const out = readFileSync(create.file, 'utf8');
    t.regex(out, /mkdir: can't create directory '\/tmp\/n': Operation not permitted\nmkdir=1\n/);
    t.regex(out, /chmod=0\n700\n$/);
    t.is(spawnSync(bin, ['--root', t.context.root, 'delete', 'notify']).status, 0);
    // Uncacheable: no plan-cache entry holds the agent (the C++ create path would not hand the listener over).
    const plans = join(t.context.root, '.plans');
    for (const f of existsSync(plans) ? readdirSync(plans) : []) t.false(readFileSync(join(plans, f)).includes(sock), f);
  } finally {
    agent.proc.kill();
  }
});

atest('SCMP_ACT_NOTIFY: an exec hands its own listener over, with the running container\'s state', async (t) => {
  const sock = join(t.context.dir, 'agent-exec.sock');
  const agent = startAgent(sock, 18, [nr('mkdir'), nr('mkdirat')]);
  try {
    t.like(await agent.next(), { ready: true });
    const b = bundle(t, ['sleep', '100'], {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: sock,
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
    });
    t.is(runc(t, ['create', '--bundle', b, 'nexec']).status, 0);
    const init = (await agent.next()) as { state: { pid: number } };
    t.is(spawnSync(bin, ['--root', t.context.root, 'start', 'nexec']).status, 0);
    const exec = runc(t, ['exec', 'nexec', 'sh', '-c', 'mkdir /tmp/e; echo mkdir=$?']);
    t.regex(exec.stdout, /cross-device link\nmkdir=1\n/i);
    const got = (await agent.next()) as { fds: number; state: { pid: number; state: Record<string, unknown> } };
    t.is(got.fds, 1);
    t.not(got.state.pid, init.state.pid, 'the exec\'d process');
    t.like(got.state.state, { id: 'nexec', status: 'running', pid: init.state.pid });
    const answer = (await agent.next()) as { nr: number };
    t.true([nr('mkdir'), nr('mkdirat')].includes(answer.nr), 'the agent answered the exec\'s mkdir');
  } finally {
    spawnSync(bin, ['--root', t.context.root, 'delete', '--force', 'nexec']);
    agent.proc.kill();
  }
});

atest('SCMP_ACT_NOTIFY with `run`: without a mount namespace, and in a user namespace mapped to an unprivileged uid', async (t) => {
  const sock = join(t.context.dir, 'agent-run.sock');
  const agent = startAgent(sock, 18, [nr('mkdir'), nr('mkdirat')]);
  try {
    t.like(await agent.next(), { ready: true });
    // The mapped root must be able to reach its bundle (mkdtemp made the test dir 0700).
    chmodSync(t.context.dir, 0o711);
    const seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: sock, syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }] };
    const cases: Array<[string, (l: Record<string, unknown>) => void]> = [
      ['nomnt', (l) => { l.namespaces = [{ type: 'pid' }, { type: 'uts' }]; }],
      ['userns', (l) => {
        l.namespaces = [...(l.namespaces as object[]), { type: 'user' }];
        l.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        l.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      }],
    ];
    for (const [id, edit] of cases) {
      const b = bundle(t, ['sh', '-c', 'mkdir /tmp/r; echo mkdir=$?'], seccomp, edit);
      const r = runc(t, ['run', '--bundle', b, id]);
      t.is(r.status, 0, r.stdout);
      t.regex(r.stdout, /cross-device link\nmkdir=1\n/i, id);
      t.like(await agent.next(), { fds: 1, state: { state: { id, status: 'creating' } } }, id);
      t.true([nr('mkdir'), nr('mkdirat')].includes((await agent.next()).nr as number), id);
    }
  } finally {
    agent.proc.kill();
  }
});
