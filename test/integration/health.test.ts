/**
 * HEALTHCHECK end to end: the real nsbox-shim runs the probe (an exec into the container) with
 * docker's state machine, `nsbox serve` shows it (ps Status, inspect State.Health, the ps `health=`
 * filter, `health_status` events), `nsbox run` takes docker's --health-* flags and an image's
 * HEALTHCHECK, and the engine's waitForHealth waits on the shim's events. Waits follow the shim's
 * events and inotify on health.json, never a clock; times are never asserted.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import http from 'node:http';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Engine } from '../../lib/engine/engine.js';
import { InvalidStateError } from '../../lib/errors.js';
import { Container } from '../../lib/index.js';
import { Image } from '../../lib/image/image.js';
import { BundleFile, readHealth, ShimHealthSchema, type ShimHealth } from '../../lib/runtime/bundle.js';
import { rootfs, skipIf } from './_helpers.js';
import { apiUnavailable, bin, cleanup, request, startServe, type Serve } from './api-fixture.js';

interface Ctx {
  serve: Serve;
  engine: Engine;
}
const test = anyTest as TestFn<Ctx>;
const reason = apiUnavailable();
const rtest = skipIf(reason, test.serial);
let serve: Serve | undefined;

test.before(async (t) => {
  if (reason) return;
  serve = await startServe();
  t.context.serve = serve;
  t.context.engine = await Engine.open({ root: serve.root });
  // An image whose config has a HEALTHCHECK that passes (as `docker build` writes one: nanoseconds).
  const tar = join(serve.dir, 'rootfs.tar');
  const made = spawnSync('tar', ['-C', rootfs(), '--exclude=./.nsbox-rootfs-stamp', '-cf', tar, '.']);
  if (made.status !== 0) throw new Error(`tar: ${made.stderr}`);
  await Image.import(tar, {
    root: serve.root,
    name: 'hc:1',
    config: { Cmd: ['sleep', '1000'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Healthcheck: { Test: ['CMD-SHELL', 'echo image-check'], Interval: 100e6, Retries: 1 } },
  });
  // An image whose SHELL is not a shell at all: a CMD-SHELL probe run by it prints its words.
  await Image.import(tar, {
    root: serve.root,
    name: 'hc-shell:1',
    config: { Cmd: ['sleep', '1000'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Shell: ['/bin/echo', 'shell:'], Healthcheck: { Test: ['CMD-SHELL', 'probe'], Interval: 100e6, Retries: 1 } },
  });
});
test.after.always(async () => {
  await cleanup(serve);
});

function nsbox(t: { context: Ctx }, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.serve.root }, timeout: 60_000 });
}

async function create(t: { context: Ctx }, body: Record<string, unknown>, name?: string): Promise<string> {
  const q = name ? `?name=${name}` : '';
  const r = await request(t.context.serve.socket, 'POST', `/containers/create${q}`, { Image: 'hc:1', ...body });
  if (r.status !== 201) throw new Error(`create: ${r.status} ${r.body}`);
  const id: string = r.json.Id;
  const s = await request(t.context.serve.socket, 'POST', `/containers/${id}/start`);
  if (s.status !== 204) throw new Error(`start: ${s.status} ${s.body}`);
  return id;
}

const bundleOf = (t: { context: Ctx }, id: string) => join(t.context.serve.root, 'containers', id, 'shim');

/** Resolves once health.json (inotify on the bundle) satisfies `ok`. */
function healthFile(bundle: string, ok: (h: ShimHealth) => boolean): Promise<ShimHealth> {
  return new Promise((resolve, reject) => {
    const w = watch(bundle, (_e, name) => {
      if (name === null || name === BundleFile.health) check();
    });
    const check = () => {
      let h: ShimHealth | undefined;
      try {
        h = readHealth(bundle);
      } catch (e) {
        w.close();
        return reject(e);
      }
      if (h && ok(h)) {
        w.close();
        resolve(h);
      }
    };
    check();
  });
}

/** The API's /events as they come, until one matches; the stream is then closed. */
function nextEvent(socket: string, query: string, ok: (e: { Action: string; id: string }) => boolean): Promise<{ Action: string; id: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: socket, path: `/events?${query}` }, (res) => {
      let buf = '';
      res.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const e = JSON.parse(buf.slice(0, i)) as { Action: string; id: string };
          buf = buf.slice(i + 1);
          if (ok(e)) {
            req.destroy();
            resolve(e);
          }
        }
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ECONNRESET') reject(e);
    });
  });
}

rtest('a passing check: healthy, told as health_status on /events; inspect State.Health; ps text from the CLI and the API alike; the health= filter', async (t) => {
  const { serve, engine } = t.context;
  const since = Math.floor(Date.now() / 1000);
  const id = await create(t, { Cmd: ['sleep', '1000'], Healthcheck: { Test: ['CMD-SHELL', 'echo ok; echo err >&2'], Interval: 100e6 } }, 'hc-pass');
  const healthy = await engine.waitForHealth(id);
  t.is(healthy.Status, 'healthy');
  const ev = await nextEvent(serve.socket, `since=${since}&filters=${encodeURIComponent(JSON.stringify({ event: ['health_status'] }))}`, (e) => e.id === id);
  t.is(ev.Action, 'health_status: healthy');

  const inspect = await request(serve.socket, 'GET', `/containers/${id}/json`);
  const h = inspect.json.State.Health;
  t.is(h.Status, 'healthy');
  t.is(h.FailingStreak, 0);
  t.true(h.Log.length >= 1 && h.Log.length <= 5);
  t.deepEqual(Object.keys(h.Log[0]).sort(), ['End', 'ExitCode', 'Output', 'Start']);
  t.is(h.Log[0].ExitCode, 0);
  t.is(h.Log[0].Output, 'ok\nerr\n', 'stdout and stderr, as docker collects them');
  t.deepEqual(inspect.json.Config.Healthcheck, { Test: ['CMD-SHELL', 'echo ok; echo err >&2'], Interval: 100e6 });
  const cli = JSON.parse(nsbox(t, ['inspect', id]).stdout)[0];
  t.is(cli.health.Status, 'healthy', 'nsbox inspect shows the same State.Health');

  const api = await request(serve.socket, 'GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ health: ['healthy'] }))}`);
  const mine = api.json.find((c: { Id: string }) => c.Id === id);
  t.regex(mine.Status, /^Up .+ \(healthy\)$/);
  const ps = nsbox(t, ['ps', '--format', 'json']).stdout.trim().split('\n').map((l) => JSON.parse(l) as { ID: string; Status: string });
  const line = ps.find((p) => id.startsWith(p.ID));
  t.is(line?.Status.replace(/^Up .+? \(/, 'Up (') , mine.Status.replace(/^Up .+? \(/, 'Up ('), 'the same status text');
  const none = await request(serve.socket, 'GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ health: ['unhealthy'] }))}`);
  t.false(none.json.some((c: { Id: string }) => c.Id === id));
  await engine.remove(id, { force: true });
});

rtest('failing checks: unhealthy after `retries` failures, told on /events; no restart for it; stopped: unhealthy, the log kept', async (t) => {
  const { serve, engine } = t.context;
  const since = Math.floor(Date.now() / 1000);
  const id = await create(t, { Cmd: ['sleep', '1000'], Healthcheck: { Test: ['CMD', 'false'], Interval: 100e6, Retries: 2 } });
  const before = await engine.health(id);
  t.true(before?.Status === 'starting' || before?.Status === 'unhealthy');
  const h = await engine.waitForHealth(id, { until: ['unhealthy'] });
  t.true(h.FailingStreak >= 2);
  t.true(h.Log.every((r) => r.ExitCode === 1));
  const ev = await nextEvent(serve.socket, `since=${since}`, (e) => e.id === id && e.Action.startsWith('health_status'));
  t.is(ev.Action, 'health_status: unhealthy');
  t.is((await engine.get(id)).state, 'running', 'docker restarts nothing for being unhealthy');
  const api = await request(serve.socket, 'GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ health: ['unhealthy'] }))}`);
  t.regex(api.json.find((c: { Id: string }) => c.Id === id).Status, /^Up .+ \(unhealthy\)$/);
  await engine.stop(id, { timeout: 1 });
  const stopped = (await request(serve.socket, 'GET', `/containers/${id}/json`)).json.State.Health;
  t.is(stopped.Status, 'unhealthy');
  t.true(stopped.Log.length >= 2 && stopped.Log.length <= 5);
  t.regex((await request(serve.socket, 'GET', `/containers/json?all=1`)).json.find((c: { Id: string }) => c.Id === id).Status, /^Exited \(\d+\)/);
  await engine.remove(id, { force: true });
});

rtest('failures within the start period are not counted; the first pass ends it', async (t) => {
  const { engine } = t.context;
  const id = await create(t, {
    Cmd: ['sleep', '1000'],
    Healthcheck: { Test: ['CMD-SHELL', 'test -e /ready'], Interval: 60e9, StartPeriod: 600e9, StartInterval: 100e6, Retries: 1 },
  });
  // The start interval runs the probe while starting; three failures leave it starting.
  const starting = await healthFile(bundleOf(t, id), (h) => h.Log.length >= 3);
  t.is(starting.Status, 'starting');
  t.is(starting.FailingStreak, 0);
  t.true(starting.Log.every((r) => r.ExitCode === 1));
  const touch = await engine.exec(id, ['touch', '/ready']);
  await touch.wait();
  t.is((await engine.waitForHealth(id)).Status, 'healthy');
  await engine.remove(id, { force: true });
});

rtest('a probe past its timeout is killed and counts as a failure (ExitCode -1, docker\'s message)', async (t) => {
  const { engine } = t.context;
  const id = await create(t, { Cmd: ['sleep', '1000'], Healthcheck: { Test: ['CMD-SHELL', 'echo slow; sleep 100'], Interval: 100e6, Timeout: 200e6, Retries: 1 } });
  const h = await engine.waitForHealth(id, { until: ['unhealthy'] });
  const last = h.Log.at(-1)!;
  t.is(last.ExitCode, -1);
  t.is(last.Output, 'Health check exceeded timeout (200ms): slow\n');
  await engine.remove(id, { force: true });
});

rtest('nsbox run: the image\'s HEALTHCHECK runs; --no-healthcheck turns it off; --health-* flags replace it', async (t) => {
  const { engine } = t.context;
  const withImage = nsbox(t, ['run', '-d', 'hc:1']);
  t.is(withImage.status, 0, withImage.stderr);
  const a = withImage.stdout.trim();
  const h = await engine.waitForHealth(a);
  t.is(h.Log.at(-1)!.Output, 'image-check\n');
  t.regex(nsbox(t, ['ps']).stdout, new RegExp(`${a.slice(0, 12)}.*Up .+ \\(healthy\\)`));

  const off = nsbox(t, ['run', '-d', '--no-healthcheck', 'hc:1']);
  t.is(off.status, 0, off.stderr);
  const b = off.stdout.trim();
  t.is(await engine.health(b), undefined, 'no State.Health');
  t.regex(nsbox(t, ['ps']).stdout, new RegExp(`${b.slice(0, 12)}.*Up [^(]+\\s{2,}`));
  t.false('health' in JSON.parse(nsbox(t, ['inspect', b]).stdout)[0]);

  const flags = nsbox(t, ['run', '-d', '--health-cmd', 'echo from-flag; exit 1', '--health-interval', '100ms', '--health-retries', '1', 'hc:1']);
  t.is(flags.status, 0, flags.stderr);
  const c = flags.stdout.trim();
  const hc = await engine.waitForHealth(c, { until: ['unhealthy'] });
  t.is(hc.Log.at(-1)!.Output, 'from-flag\n');
  const bad = nsbox(t, ['run', '-d', '--no-healthcheck', '--health-cmd', 'true', 'hc:1']);
  t.not(bad.status, 0);
  t.regex(bad.stderr, /--no-healthcheck conflicts with --health-\* options/);
  for (const id of [a, b, c]) await engine.remove(id, { force: true });
});

rtest('restart: the status starts over (starting, streak 0), the log is kept; a restart policy\'s restart too', async (t) => {
  const { engine } = t.context;
  const id = await create(t, { Cmd: ['sleep', '1000'], Healthcheck: { Test: ['CMD', 'false'], Interval: 100e6, Retries: 1 } });
  await engine.waitForHealth(id, { until: ['unhealthy'] });
  const rec = await engine.restart(id, { timeout: 1 });
  const after = await engine.health(id);
  t.is(after?.Status, 'starting');
  t.is(after?.FailingStreak, 0);
  t.true(after!.Log.length >= 1 && after!.Log.every((r) => Date.parse(r.Start) < Date.parse(rec.startedAt!)), 'the results of the run before are kept');
  await engine.waitForHealth(id, { until: ['unhealthy'] });
  await engine.remove(id, { force: true });

  // Under --restart always, the shim restarts the container itself: each run starts over.
  const r = await create(t, { Cmd: ['sh', '-c', 'test -e /once && exec sleep 1000; touch /once; exit 1'], Healthcheck: { Test: ['CMD', 'true'], Interval: 100e6 }, HostConfig: { RestartPolicy: { Name: 'always' } } });
  const bundle = bundleOf(t, r);
  const restarted = await healthFile(bundle, (h) => h.Status === 'healthy');
  t.is(restarted.Status, 'healthy', 'the exit left it unhealthy; the restart started it over');
  t.true(JSON.parse(await readFile(join(bundle, BundleFile.state), 'utf8')).restartCount >= 1);
  await engine.remove(r, { force: true });
});

rtest('health.json as the real shim wrote it: docker\'s State.Health, through its schema', async (t) => {
  const { engine } = t.context;
  const id = await create(t, { Cmd: ['sleep', '1000'], Healthcheck: { Test: ['CMD-SHELL', 'head -c 5000 /dev/zero | tr "\\0" x'], Interval: 100e6 } });
  await engine.waitForHealth(id);
  const raw = JSON.parse(await readFile(join(bundleOf(t, id), BundleFile.health), 'utf8'));
  t.deepEqual(Object.keys(raw), ['Status', 'FailingStreak', 'Log']);
  const h = ShimHealthSchema.parse(raw);
  const out = h.Log.at(-1)!.Output;
  t.is(out.length, 4096 + 3, 'cut at 4096 bytes, then "..."');
  t.true(out.endsWith('x...'));
  t.true(Date.parse(h.Log[0]!.End) >= Date.parse(h.Log[0]!.Start));
  await engine.remove(id, { force: true });
});

rtest('in-process (the SDK\'s Container): this process runs the probe; health() and waitForHealth(); unhealthy after retries; stopped with the container', async (t) => {
  // A tmpfs on /tmp: the probe's file is not written into the shared rootfs fixture.
  await using c = await Container.run({ rootfs: rootfs(), mounts: [{ type: 'tmpfs', target: '/tmp' }], command: ['sleep', '1000'], healthcheck: { test: ['CMD-SHELL', 'test -e /tmp/ok && echo fine'], interval: 100, retries: 2 } });
  t.is(c.health()?.Status, 'starting');
  const bad = await c.waitForHealth({ until: ['unhealthy'] });
  t.true(bad.FailingStreak >= 2);
  t.true(bad.Log.every((r) => r.ExitCode === 1));
  await (await c.exec(['touch', '/tmp/ok'])).wait();
  const good = await c.waitForHealth();
  t.is(good.Status, 'healthy');
  t.is(good.Log.at(-1)!.Output, 'fine\n');
  t.true(good.Log.length <= 5);
  const waiting = c.waitForHealth({ until: ['starting'] });
  c.kill('SIGKILL');
  await c.wait();
  await t.throwsAsync(waiting, { instanceOf: InvalidStateError });
  t.is(c.health()?.Status, 'unhealthy');
});

rtest('a detached runtime Container: waitForHealth through its shim\'s events', async (t) => {
  const runRoot = await mkdtemp(join(tmpdir(), 'nsbox-health-'));
  const c = await Container.create({ rootfs: rootfs(), runRoot, command: ['sleep', '1000'], healthcheck: { test: ['CMD', 'true'], interval: 100 } });
  t.teardown(async () => {
    await c.remove();
    await rm(runRoot, { recursive: true, force: true });
  });
  await c.startDetached();
  t.is((await c.waitForHealth()).Status, 'healthy');
  t.is(c.health()?.Status, 'healthy');
});

rtest("CMD-SHELL runs through the image's SHELL (detached and in-process), the container's own Shell over it", async (t) => {
  const { engine } = t.context;
  const id = await create(t, { Image: 'hc-shell:1' });
  const h = await engine.waitForHealth(id);
  t.is(h.Log.at(-1)!.Output, 'shell: probe\n');
  await engine.remove(id, { force: true });
  const own = await create(t, { Image: 'hc-shell:1', Shell: ['/bin/echo', 'mine:'] });
  t.is((await engine.waitForHealth(own)).Log.at(-1)!.Output, 'mine: probe\n');
  await engine.remove(own, { force: true });
  await using c = await Container.run({ image: 'hc-shell:1', imageRoot: t.context.serve.root });
  t.is((await c.waitForHealth()).Log.at(-1)!.Output, 'shell: probe\n');
});
