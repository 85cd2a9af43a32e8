/**
 * docker cp through the SDK (copyTo/copyFrom, running and not yet started) and `nsbox cp` (both
 * ways, `-` as tar), symlinks in the container kept inside its root; and a log wait over an
 * engine container that only counts the output of its current start (testcontainers-node #446).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Container } from '../../lib/container.js';
import { Engine } from '../../lib/engine/engine.js';
import { WaitError } from '../../lib/errors.js';
import { startAndWait } from '../../lib/wait/engine-target.js';
import { collect, isRoot, rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, registryUnavailable, type ImageRegistry } from '../fixtures/registry.js';
import { bin } from './api-fixture.js';

interface Ctx extends ImageRegistry {
  tmp: string;
  engine: Engine;
  image: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = !isRoot ? 'needs root' : registryUnavailable();
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  t.context.tmp = mkdtempSync(join(tmpdir(), 'nsbox-copy-'));
  Object.assign(t.context, await startImageRegistry(rootfs()));
  t.context.engine = await Engine.open({ root: join(t.context.tmp, 'root') });
  t.context.image = `${t.context.reg.host}/busybox:1`;
});
test.after.always(async (t) => {
  if (t.context.engine) for (const r of await t.context.engine.list({ all: true })) await t.context.engine.remove(r.id, { force: true }).catch(() => {});
  await t.context.stop?.();
  if (t.context.tmp) rmSync(t.context.tmp, { recursive: true, force: true });
});

const sdk = (t: { context: Ctx }) => ({ layers: [rootfs()], runRoot: join(t.context.tmp, 'run'), imageRoot: join(t.context.tmp, 'root') });

rtest('SDK copyTo/copyFrom: before start and while running, files, directories, buffers, a tar stream', async (t) => {
  const h = join(t.context.tmp, 'sdk-host');
  mkdirSync(join(h, 'tree/sub'), { recursive: true });
  writeFileSync(join(h, 'tree/sub/f'), 'deep\n');
  writeFileSync(join(h, 'one'), 'one\n');
  const c = await Container.create({ ...sdk(t), command: ['sleep', '1000'] });
  t.teardown(() => c.remove());
  await c.copyTo(join(h, 'one'), '/etc/one');
  await c.copyTo(Buffer.from('buf\n'), '/opt/made/buf.txt', { mode: 0o600 });
  await c.copyTo(join(h, 'tree'), '/srv');
  await c.start();
  const cat = async (...files: string[]) => {
    const p = await c.exec(['cat', ...files]);
    const [o] = await Promise.all([collect(p.stdout), p.wait()]);
    return o;
  };
  // /srv did not exist: docker cp makes it with the directory's contents.
  t.is(await cat('/etc/one', '/opt/made/buf.txt', '/srv/sub/f'), 'one\nbuf\ndeep\n', 'what was copied before the start is there');
  await c.copyTo(join(h, 'one'), '/tmp/');
  t.is(await cat('/tmp/one'), 'one\n');
  const out = join(t.context.tmp, 'sdk-out');
  mkdirSync(out);
  await c.copyTo(join(h, 'tree'), '/srv');
  t.is(await cat('/srv/tree/sub/f'), 'deep\n', 'into an existing directory: inside it');
  await c.copyFrom('/srv/tree', out);
  t.is(readFileSync(join(out, 'tree/sub/f'), 'utf8'), 'deep\n');
  await c.copyFrom('/etc/one', join(out, 'renamed'));
  t.is(readFileSync(join(out, 'renamed'), 'utf8'), 'one\n');
  const tar = await c.copyFrom('/etc/one');
  const bytes = Buffer.concat(await tar.toArray());
  t.is(bytes.subarray(0, 3).toString(), 'one', 'the tar names the entry after the path');
  await t.throwsAsync(c.copyFrom('/nope'), { message: /Could not find the file \/nope/ });
  await t.throwsAsync(c.copyTo(join(h, 'tree'), '/etc/one'), { message: /cannot copy a directory to a file/ });
});

rtest('SDK copies stay in the root: absolute and climbing links, in and out', async (t) => {
  const victim = mkdtempSync(join(tmpdir(), 'nsbox-copy-victim-'));
  t.teardown(() => rmSync(victim, { recursive: true, force: true }));
  writeFileSync(join(victim, 'secret'), 'host secret\n');
  const c = await Container.run({ ...sdk(t), command: ['sh', '-c', `mkdir -p /in; ln -s ${victim} /abs; ln -s ../../../../../..${victim} /in/rel; ln -s / /in/root; echo linked; sleep 1000`], waitFor: { log: 'linked' } });
  t.teardown(() => c.remove());
  for (const dest of ['/abs/payload', '/in/rel/payload', '/in/root/tmp/payload']) {
    await c.copyTo(Buffer.from('payload\n'), dest).catch(() => undefined);
  }
  t.deepEqual(readdirSync(victim), ['secret'], 'nothing written in the host directory the links name');
  const p = await c.exec(['cat', `${victim}/payload`, '/tmp/payload']);
  const [o] = await Promise.all([collect(p.stdout), p.wait()]);
  t.is(o, 'payload\npayload\n', 'the links were followed inside the container\'s root');
  const out = join(t.context.tmp, 'stolen');
  for (const src of ['/abs/secret', '/in/rel/secret']) {
    await t.throwsAsync(c.copyFrom(src, out), undefined, `${src} is not found inside the root`);
    t.false(existsSync(out));
  }
  // The link leads to the directory the buffer copy above made inside the container: that one, not the host's.
  await c.copyFrom('/abs/.', out);
  t.deepEqual(readdirSync(out), ['payload']);
});

rtest('nsbox cp: host to container and back, - as a tar both ways, a stopped container', async (t) => {
  const { engine, image } = t.context;
  const env = { ...process.env, NSBOX_ROOT: engine.root };
  const nsbox = (args: string[], input?: Buffer) => spawnSync(process.execPath, [bin, ...args], { env, input, timeout: 60_000 });
  const r = await engine.create({ name: 'cpcli', options: { image, command: ['sleep', '1000'] } });
  const h = join(t.context.tmp, 'cli-host');
  mkdirSync(join(h, 'd'), { recursive: true });
  writeFileSync(join(h, 'd/x'), 'x\n');
  const into = nsbox(['cp', join(h, 'd'), 'cpcli:/data']);
  t.is(into.status, 0, into.stderr.toString());
  await engine.start(r.id);
  const out = join(t.context.tmp, 'cli-out');
  const back = nsbox(['cp', 'cpcli:/data/x', out]);
  t.is(back.status, 0, back.stderr.toString());
  t.is(readFileSync(out, 'utf8'), 'x\n');
  const tar = nsbox(['cp', 'cpcli:/data', '-']);
  t.is(tar.status, 0, tar.stderr.toString());
  t.is(tar.stdout.subarray(0, 5).toString(), 'data/');
  const put = nsbox(['cp', '-', 'cpcli:/tmp'], tar.stdout);
  t.is(put.status, 0, put.stderr.toString());
  await engine.stop(r.id, { timeout: 0 });
  const fromStopped = nsbox(['cp', 'cpcli:/tmp/data/x', join(t.context.tmp, 'from-stopped')]);
  t.is(fromStopped.status, 0, fromStopped.stderr.toString());
  t.is(readFileSync(join(t.context.tmp, 'from-stopped'), 'utf8'), 'x\n');
  const both = nsbox(['cp', 'cpcli:/a', 'cpcli:/b']);
  t.not(both.status, 0);
  t.regex(both.stderr.toString(), /copying between containers is not supported/);
});

rtest('a log wait on an engine container counts only the output of its current start (#446)', async (t) => {
  const { engine, image } = t.context;
  const r = await engine.create({ options: { image, command: ['sh', '-c', 'echo Ready; sleep 1000'] } });
  await startAndWait(engine, r.id, { log: 'Ready' });
  await engine.stop(r.id, { timeout: 0 });
  // Two "Ready" lines in the log now, one from this start: a wait for two must not pass.
  const e = await t.throwsAsync(startAndWait(engine, r.id, { log: 'Ready', times: 2, timeout: 1500 }), { instanceOf: WaitError });
  t.is(e?.code, 'ERR_WAIT_TIMEOUT');
  t.regex(e!.message, /waiting for log "Ready" ×2 \(1 of 2 seen\)/);
  t.deepEqual(e!.logTail, ['Ready'], 'the tail is this start\'s output only');
  let all = 0;
  for await (const l of engine.logs(r.id)) if (l.log === 'Ready\n') all++;
  t.is(all, 2);
  await engine.stop(r.id, { timeout: 0 });
});

rtest('healthy: an engine container\'s HEALTHCHECK becoming healthy; unhealthy fails the wait; in-process too; none is refused', async (t) => {
  const { engine, image } = t.context;
  const good = await engine.create({ options: { image, command: ['sh', '-c', 'sleep 0.3; touch /tmp/up; echo up; sleep 1000'], healthcheck: { test: ['CMD', 'test', '-f', '/tmp/up'], interval: 100, startInterval: 100, retries: 3 } } });
  await startAndWait(engine, good.id, { healthy: true, timeout: 30_000 });
  t.is((await engine.health(good.id))?.Status, 'healthy');
  await engine.remove(good.id, { force: true });
  const bad = await engine.create({ options: { image, command: ['sh', '-c', 'echo never up; sleep 1000'], healthcheck: { test: ['CMD-SHELL', 'echo probe says no; exit 1'], interval: 100, retries: 2 } } });
  const e = await t.throwsAsync(startAndWait(engine, bad.id, { healthy: true, timeout: 30_000 }), { instanceOf: WaitError });
  t.is(e?.code, 'ERR_WAIT_FAILED');
  t.regex(e!.message, /is unhealthy \(2 failing in a row; last probe exit 1: probe says no\)/);
  t.regex(e!.message, /never up/);
  await engine.remove(bad.id, { force: true });
  const timeout = await engine.create({ options: { image, command: ['sleep', '1000'], healthcheck: { test: ['CMD', 'false'], interval: 60_000, retries: 3 } } });
  const slow = await t.throwsAsync(startAndWait(engine, timeout.id, { healthy: true, timeout: 500 }), { instanceOf: WaitError });
  t.regex(slow!.message, /timed out after 500 ms waiting for the healthcheck to say healthy \(not healthy yet\)/);
  await engine.remove(timeout.id, { force: true });
  await t.throwsAsync(Container.run({ ...sdk(t), command: ['sleep', '1000'], waitFor: { healthy: true } }), { message: /has no healthcheck/ });
  // In-process: the SDK runs the healthcheck itself.
  const inproc = await Container.run({ ...sdk(t), command: ['sh', '-c', 'sleep 0.3; touch /tmp/up; sleep 1000'], healthcheck: { test: ['CMD', 'test', '-f', '/tmp/up'], interval: 100, startInterval: 100, retries: 3 }, waitFor: { healthy: true, timeout: 30_000 } });
  t.is(inproc.health()?.Status, 'healthy');
  await inproc.remove();
});
