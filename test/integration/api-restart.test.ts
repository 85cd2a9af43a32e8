/**
 * The daemon's own life: a socket of mode 0660 (group as asked), loopback TCP besides, one JSON log
 * line per request, a clean SIGTERM; and containers that outlive a daemon restart (they run under
 * their shims), listed, exec'd into and stopped by the next daemon.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import http from 'node:http';
import anyTest, { type TestFn } from 'ava';
import { rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, type ImageRegistry, freePort } from '../fixtures/registry.js';
import { apiUnavailable, bin, cleanup, docker, request, startServe, type Serve } from './api-fixture.js';
import { until } from '../fixtures/until.js';

interface Ctx extends ImageRegistry {
}
/** The servers started: a test's changes to t.context do not reach the after hooks, so they live here. */
const serves: Serve[] = [];
const track = (s: Serve) => (serves.push(s), s);
const test = anyTest as TestFn<Ctx>;
const reason = apiUnavailable({ docker: true });
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  Object.assign(t.context, await startImageRegistry(rootfs()));
});
test.after.always(async (t) => {
  // The last server of each store removes its containers and its dir; the earlier ones are stopped.
  const done = new Set<string>();
  for (const s of serves.reverse()) {
    if (done.has(s.dir)) await s.stop();
    else await cleanup(s);
    done.add(s.dir);
  }
  await t.context.stop?.();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function tcpPing(port: number): Promise<{ status: number; version: string | undefined }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/_ping' }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, version: res.headers['api-version'] as string | undefined });
    }).on('error', reject);
  });
}

rtest('socket mode and group, loopback TCP, request log, SIGTERM; containers survive a daemon restart', async (t) => {
  const port = await freePort();
  const first = track(await startServe({ args: ['--group', '0', '--host', `tcp://127.0.0.1:${port}`] }));
  const st = statSync(first.socket);
  t.is(st.mode & 0o777, 0o660);
  t.is(st.gid, 0);
  t.deepEqual(await tcpPing(port), { status: 200, version: '1.41' });
  const ping = await request(first.socket, 'HEAD', '/_ping');
  t.is(ping.headers['api-version'], '1.41');
  t.is(ping.headers['ostype'], 'linux');

  const img = `${t.context.reg.host}/busybox:1`;
  t.is(docker(first, ['pull', '-q', img]).status, 0);
  const run = docker(first, ['run', '-d', '--name', 'survivor', img, 'sh', '-c', 'echo started; exec sleep 100']);
  t.is(run.status, 0, run.stderr);
  const id = run.stdout.trim();
  const pid: number = (await request(first.socket, 'GET', '/containers/survivor/json')).json.State.Pid;
  t.true(pid > 1 && alive(pid));

  t.true(await first.logged((l) => l['level'] === 'debug' && l['method'] === 'POST' && l['route'] === '/containers/create' && l['status'] === 201), `one JSON line per request: ${first.log()}`);

  t.is(await first.stop(), 0, 'SIGTERM: a clean exit');
  t.false(existsSync(first.socket), 'the socket file is removed');
  t.true(alive(pid), 'the container runs on without the daemon');

  const second = track(await startServe({ root: first.root, dir: first.dir }));
  const ps = docker(second, ['ps']);
  t.regex(ps.stdout, new RegExp(`${id.slice(0, 12)}\\s+.*Up .*\\s+survivor\\n`));
  t.is(docker(second, ['exec', 'survivor', 'echo', 'still here']).stdout, 'still here\n');
  t.is(docker(second, ['logs', 'survivor']).stdout, 'started\n');
  t.is(docker(second, ['stop', '-t', '1', 'survivor']).status, 0);
  t.false(alive(pid));
  t.is(docker(second, ['rm', 'survivor']).status, 0);
});

rtest('after a host reboot (shims and containers gone) the next daemon starts always and unless-stopped containers, as dockerd does', async (t) => {
  const first = track(await startServe());
  const img = `${t.context.reg.host}/busybox:1`;
  t.is(docker(first, ['pull', '-q', img]).status, 0);
  const run = (name: string, restart: string) => {
    const r = docker(first, ['run', '-d', '--name', name, '--restart', restart, img, 'sleep', '1000']);
    t.is(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const ids = {
    always: run('always', 'always'),
    unlessStopped: run('unless-stopped', 'unless-stopped'),
    stoppedUnless: run('stopped-unless', 'unless-stopped'),
    stoppedAlways: run('stopped-always', 'always'),
    none: run('none', 'no'),
  };
  t.is(docker(first, ['stop', '-t', '1', 'stopped-unless', 'stopped-always']).status, 0);
  t.is(await first.stop(), 0);

  // The reboot: every shim and container process of this root dies at once.
  const inspect = (id: string) => {
    const r = spawnSync(process.execPath, [bin, 'inspect', id], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: first.root } });
    return (JSON.parse(r.stdout) as Array<{ pid?: number; supervisor?: { pid: number } }>)[0]!;
  };
  const victims: number[] = [];
  for (const id of [ids.always, ids.unlessStopped, ids.none]) {
    const r = inspect(id);
    t.truthy(r.pid && r.supervisor, `${id} runs under its shim`);
    victims.push(r.supervisor!.pid, r.pid!);
  }
  for (const pid of victims) process.kill(pid, 'SIGKILL');
  await until('the killed shims and containers to end', () => !victims.some(alive));

  const second = track(await startServe({ root: first.root, dir: first.dir }));
  t.teardown(() => docker(second, ['rm', '-f', ...Object.values(ids)]));
  // Told in its log as each restart is made (the engine's open, before or after it listens).
  for (const id of [ids.always, ids.unlessStopped, ids.stoppedAlways]) t.true(await second.logged((l) => l['msg'] === 'restarted by its restart policy' && l['container'] === id), `${id} restarted`);
  const restarted = second.log().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'restarted by its restart policy').map((l) => l['container']);
  t.deepEqual(restarted.sort(), [ids.always, ids.unlessStopped, ids.stoppedAlways].sort());
  const ps = docker(second, ['ps', '--format', '{{.Names}}']).stdout.trim().split('\n').sort();
  t.deepEqual(ps, ['always', 'stopped-always', 'unless-stopped']);
  t.is(docker(second, ['exec', 'always', 'echo', 'back']).stdout, 'back\n');
  const state = (name: string) => docker(second, ['inspect', '-f', '{{.State.Status}}', name]).stdout.trim();
  t.is(state('stopped-unless'), 'exited', 'stopped by hand: unless-stopped stays down');
  t.not(state('none'), 'running');
  t.is(docker(second, ['rm', '-f', ...Object.values(ids)]).status, 0);
});

rtest("a --rm container of the daemon, restarted by another process (the CLI), is kept; its new run's end removes it", async (t) => {
  const s = track(await startServe());
  const img = `${t.context.reg.host}/busybox:1`;
  t.is(docker(s, ['pull', '-q', img]).status, 0);
  const run = docker(s, ['run', '-d', '--rm', '--name', 'kept', img, 'sleep', '1000']);
  t.is(run.status, 0, run.stderr);
  const id = run.stdout.trim();
  const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: s.root } });
  const startedAt = () => (JSON.parse(cli('inspect', id).stdout || '[{}]') as Array<{ startedAt?: string }>)[0]?.startedAt;
  const first = startedAt();
  // The daemon watches this run's shim to remove the container at its end; the CLI's stop of it
  // is a restart's, which keeps it (as docker's restart of a --rm container).
  const restart = cli('restart', '-t', '1', 'kept');
  t.is(restart.status, 0, restart.stderr);
  t.is(docker(s, ['inspect', '-f', '{{.State.Status}}', 'kept']).stdout.trim(), 'running');
  t.not(startedAt(), first, 'a new run');
  // Given time to act on the first run's end, the daemon has removed nothing.
  await new Promise((r) => setTimeout(r, 500));
  t.is(docker(s, ['inspect', '-f', '{{.State.Status}}', 'kept']).stdout.trim(), 'running');
  t.false(s.log().includes('removing --rm container'), s.log());
  // The new run's end removes it (its shim's exit command, the daemon's claim let go).
  t.is(cli('stop', '-t', '1', 'kept').status, 0);
  await until('the restarted --rm container to be removed', () => docker(s, ['ps', '-a', '-q', '--no-trunc']).stdout.trim() === '');
  t.is(docker(s, ['inspect', 'kept']).status, 1);
});
