/**
 * The daemon's own life: a socket of mode 0660 (group as asked), loopback TCP besides, one JSON log
 * line per request, a clean SIGTERM; and containers that outlive a daemon restart (they run under
 * their shims), listed, exec'd into and stopped by the next daemon.
 */
import { existsSync, statSync } from 'node:fs';
import http from 'node:http';
import anyTest, { type TestFn } from 'ava';
import { rootfs } from './_helpers.js';
import { startImageRegistry, type ImageRegistry, freePort } from '../fixtures/registry.js';
import { apiUnavailable, cleanup, docker, request, startServe, type Serve } from './api-fixture.js';

interface Ctx extends ImageRegistry {
}
/** The server running now: a test's changes to t.context do not reach the after hooks, so it lives here. */
let current: Serve | undefined;
const test = anyTest as TestFn<Ctx>;
const reason = apiUnavailable({ docker: true });
const rtest = reason ? test.skip : test.serial;
if (reason) console.warn(`api-restart tests skipped: ${reason}`);

test.before(async (t) => {
  if (reason) return;
  Object.assign(t.context, await startImageRegistry(rootfs()));
});
test.after.always(async (t) => {
  await cleanup(current);
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
  const first = await startServe({ args: ['--group', '0', '--host', `tcp://127.0.0.1:${port}`] });
  current = first;
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

  const lines = first.log().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(lines.some((l) => l['level'] === 'debug' && l['method'] === 'POST' && l['route'] === '/containers/create' && l['status'] === 201), 'one JSON line per request');

  t.is(await first.stop(), 0, 'SIGTERM: a clean exit');
  t.false(existsSync(first.socket), 'the socket file is removed');
  t.true(alive(pid), 'the container runs on without the daemon');

  const second = await startServe({ root: first.root, dir: first.dir });
  current = second;
  const ps = docker(second, ['ps']);
  t.regex(ps.stdout, new RegExp(`${id.slice(0, 12)}\\s+.*Up .*\\s+survivor\\n`));
  t.is(docker(second, ['exec', 'survivor', 'echo', 'still here']).stdout, 'still here\n');
  t.is(docker(second, ['logs', 'survivor']).stdout, 'started\n');
  t.is(docker(second, ['stop', '-t', '1', 'survivor']).status, 0);
  t.false(alive(pid));
  t.is(docker(second, ['rm', 'survivor']).status, 0);
});
