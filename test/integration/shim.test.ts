/**
 * nsbox-shim end to end: detached containers on the busybox rootfs that outlive the Node process
 * that started them, their log, attach, exit record, restart policy and clean-up. Every process a
 * test starts is ended by pid in its teardown, also when the test fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { SpawnPlan } from '../../lib/native.js';
import { NsboxError } from '../../lib/errors.js';
import { AttachConnection, CONSOLE_PLACEHOLDER, readExit, readLog, readState, startDetached, type ShimExit, type ShimSettings } from '../../lib/runtime/shim.js';
import { Container } from '../../lib/index.js';
import { rootfs, rootTest as test } from './_helpers.js';
import { alive, bundle, planFor, ppidOf, until } from './shim-fixture.js';

const shimModule = pathToFileURL(fileURLToPath(new URL('../../lib/runtime/shim.ts', import.meta.url))).href;
// Run by a separate Node process that exits right after: the container must not need it.
const starter = `
const [mod, planJson, dir, settings] = process.argv.slice(1);
const { startDetached } = await import(mod);
const plan = JSON.parse(planJson, (_k, v) => (v && typeof v === 'object' && typeof v.$b64 === 'string' ? Buffer.from(v.$b64, 'base64') : v));
process.stdout.write(JSON.stringify(await startDetached(plan, dir, JSON.parse(settings))));
`;

function startFromAnotherProcess(plan: SpawnPlan, dir: string, settings: ShimSettings): { shimPid: number; pid: number } {
  const planJson = JSON.stringify(plan, (_k, v: unknown) => {
    const b = v as { type?: string; data?: number[] };
    return b && typeof b === 'object' && b.type === 'Buffer' && Array.isArray(b.data) ? { $b64: Buffer.from(b.data).toString('base64') } : v;
  });
  const out = execFileSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', starter, shimModule, planJson, dir, JSON.stringify(settings)], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out) as { shimPid: number; pid: number };
}

test('a detached container outlives the process that started it: log, attach, exit record, clean-up', async (t) => {
  const { dir, track } = bundle(t);
  const plan = planFor(['sh', '-c', 'echo one; echo two >&2; while read l; do echo "got $l"; done']);
  const r = startFromAnotherProcess(plan, dir, { openStdin: true });
  track(r);
  t.true(alive(r.pid), 'the container runs after its starter exited');
  t.is(ppidOf(r.pid), r.shimPid, 'the shim is the parent');
  t.not(ppidOf(r.shimPid), process.pid);
  t.is(readFileSync(join(dir, 'shim.pid'), 'utf8').trim(), String(r.shimPid));
  t.like(readState(dir), { status: 'running', pid: r.pid, shimPid: r.shimPid, restartCount: 0 });

  const log = await until('the first lines in the log', () => (readLog(dir).length >= 2 ? readLog(dir) : undefined));
  t.deepEqual(log.map((e) => [e.stream, e.log]).sort(), [['stderr', 'two\n'], ['stdout', 'one\n']]);
  t.regex(log[0]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);

  const a = await AttachConnection.connect(dir);
  t.teardown(() => a.close());
  let out = '';
  a.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<ShimExit>((resolve) => a.once('exit', resolve));
  a.resize(100, 30); // accepted (no terminal here), and the connection stays usable
  a.write('hello\n');
  await until('the container to answer through attach', () => out.includes('got hello\n'));
  t.true(readLog(dir).some((e) => e.log === 'got hello\n'), 'attached output is logged too');

  process.kill(r.pid, 'SIGKILL');
  const exit = await exited;
  t.like(exit, { exitCode: null, signal: 'SIGKILL' });
  t.deepEqual(await until('exit.json', () => readExit(dir)), exit);
  await until('the shim to exit', () => !alive(r.shimPid));
  t.like(readState(dir), { status: 'exited', pid: 0 });
  t.false(existsSync(join(dir, 'attach.sock')), 'the socket is removed');
  t.false(existsSync(join(dir, 'shim.pid')));
});

test('restart on-failure:2 restarts a failing command twice, then stops', async (t) => {
  const { dir, track } = bundle(t);
  const r = await startDetached(planFor(['sh', '-c', 'echo attempt; exit 3']), dir, { restart: 'on-failure:2' });
  track(r);
  await until('the shim to give up', () => !alive(r.shimPid));
  t.deepEqual(readLog(dir).map((e) => e.log), ['attempt\n', 'attempt\n', 'attempt\n']);
  t.like(readState(dir), { status: 'exited', restartCount: 2 });
  t.like(readExit(dir), { exitCode: 3, signal: null });
  t.false(existsSync(join(dir, 'attach.sock')));
});

test('SIGTERM to the shim stops its container for good, even with restart always', async (t) => {
  const { dir, track } = bundle(t);
  // sleep as pid 1 of its namespace ignores SIGTERM: the shim escalates to SIGKILL after stopTimeout.
  const r = await startDetached(planFor(['sleep', '1000']), dir, { restart: 'always', stopTimeout: 0.2 });
  track(r);
  process.kill(r.shimPid, 'SIGTERM');
  await until('the shim to exit', () => !alive(r.shimPid));
  t.false(alive(r.pid));
  t.like(readExit(dir), { exitCode: null, signal: 'SIGKILL' });
  t.like(readState(dir), { status: 'stopped', restartCount: 0 });
  t.false(existsSync(join(dir, 'attach.sock')));
});

test('Container.remove() of a detached container returns once its shim is gone, and leaves nothing', async (t) => {
  const runRoot = mkdtempSync(join(tmpdir(), 'nsbox-shim-rm-'));
  t.teardown(() => rmSync(runRoot, { recursive: true, force: true }));
  // restart always and a stop signal sleep ignores: only the shim's own stop ends it for good.
  const c = await Container.create({ rootfs: rootfs(), command: ['/bin/sleep', '1000'], runRoot, stdio: 'ignore' });
  const r = await c.startDetached({ restart: 'always', stopTimeout: 5 });
  t.teardown(() => {
    for (const pid of [r.shimPid, r.pid]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await c.remove();
  t.false(alive(r.shimPid), 'the shim is gone when remove() returns');
  t.false(alive(r.pid));
  t.false(existsSync(join(runRoot, c.id)), 'its directory is gone (no file written after the removal)');
});

test('a container that cannot start is an NsboxError naming the step, and no shim stays behind', async (t) => {
  const { dir } = bundle(t);
  const err = await t.throwsAsync(startDetached(planFor(['/no/such/program']), dir), { instanceOf: NsboxError });
  t.is(err?.message, 'execve /no/such/program: ENOENT (No such file or directory)');
  t.like(err, { code: 'ENOENT', syscall: 'execve', path: '/no/such/program' });
  t.false(existsSync(join(dir, 'shim.pid')));
  t.false(existsSync(join(dir, 'attach.sock')));
});

test('with a terminal: a pty on /dev/console, its size set at start and by attach, input echoed, EOF as ^D', async (t) => {
  const { dir, track } = bundle(t);
  const script = 'stty size; [ -t 0 ] && echo tty; [ "$(stat -L -c %t:%T /dev/console)" = "$(stat -L -c %t:%T /proc/self/fd/0)" ] && echo console; read l; echo "got $l"; stty size; read l || echo eof';
  const r = await startDetached(planFor(['sh', '-c', script], CONSOLE_PLACEHOLDER), dir, { tty: { cols: 100, rows: 30 } });
  track(r);
  const a = await AttachConnection.connect(dir);
  t.teardown(() => a.close());
  let out = '';
  a.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<ShimExit>((resolve) => a.once('exit', resolve));
  await until('the first output', () => readLog(dir).some((e) => e.log.includes('console')));
  a.resize(120, 40); // frames are handled in order: the size is set before the line arrives
  a.write('hi\n');
  await until('the new size', () => out.includes('40 120'));
  a.closeStdin();
  t.like(await exited, { exitCode: 0 });
  const log = readLog(dir).map((e) => e.log).join('');
  t.true(readLog(dir).every((e) => e.stream === 'stdout'), 'a terminal has one output stream');
  for (const line of ['30 100\r\n', 'tty\r\n', 'console\r\n', 'hi\r\n', 'got hi\r\n', '40 120\r\n', 'eof\r\n']) t.true(log.includes(line), line);
  await until('the shim to exit', () => !alive(r.shimPid));
});
