/**
 * `/containers/{id}/archive` (HEAD, GET, PUT) against `nsbox serve`, through the docker CLI's
 * `docker cp` and raw requests: running, created and exited containers, docker cp's rules for
 * directories, and symlinks in the container that try to lead the copy out of its root.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, type ImageRegistry } from '../fixtures/registry.js';
import { apiUnavailable, cleanup, docker, request, startServe, type Serve } from './api-fixture.js';
import { headerBlocks } from '../../lib/build/diff-tar.js';

interface Ctx extends ImageRegistry {
  serve: Serve;
  host: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = apiUnavailable({ docker: true });
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  Object.assign(t.context, await startImageRegistry(rootfs()));
  t.context.serve = await startServe();
  t.context.host = mkdtempSync(join(tmpdir(), 'nsbox-cp-host-'));
});
test.after.always(async (t) => {
  await cleanup(t.context.serve);
  await t.context.stop?.();
  if (t.context.host) rmSync(t.context.host, { recursive: true, force: true });
});

const img = (t: { context: Ctx }) => `${t.context.reg.host}/busybox:1`;

function ok(t: { is: (a: unknown, b: unknown, m?: string) => void }, r: { status: number | null; stderr: string; stdout: string }, what: string): string {
  t.is(r.status, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

/** A small tar: entries of [name, type, content/linkname]. */
function tarOf(entries: Array<[string, '0' | '2' | '5', string?]>): Buffer {
  const out: Buffer[] = [];
  for (const [name, type, body = ''] of entries) {
    const data = type === '0' ? Buffer.from(body) : Buffer.alloc(0);
    out.push(...headerBlocks({ name, type, mode: type === '5' ? 0o755 : 0o644, uid: 0, gid: 0, size: data.length, mtime: 1_700_000_000, ...(type === '2' ? { linkname: body } : {}) }));
    if (data.length) out.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

rtest('docker cp to and from a running container: files, directories, docker cp rules', (t) => {
  const s = t.context.serve;
  const id = ok(t, docker(s, ['run', '-d', '--name', 'cp-run', img(t), 'sleep', '1000']), 'run -d').trim();
  t.teardown(() => void docker(s, ['rm', '-f', 'cp-run']));
  const h = t.context.host;
  writeFileSync(join(h, 'one.txt'), 'one\n');
  mkdirSync(join(h, 'tree/sub'), { recursive: true });
  writeFileSync(join(h, 'tree/a'), 'A');
  writeFileSync(join(h, 'tree/sub/b'), 'B');

  ok(t, docker(s, ['cp', join(h, 'one.txt'), 'cp-run:/tmp/']), 'cp file into a dir');
  t.is(ok(t, docker(s, ['exec', 'cp-run', 'cat', '/tmp/one.txt']), 'cat'), 'one\n');
  ok(t, docker(s, ['cp', join(h, 'one.txt'), 'cp-run:/tmp/renamed']), 'cp file to a new name');
  t.is(ok(t, docker(s, ['exec', 'cp-run', 'cat', '/tmp/renamed']), 'cat'), 'one\n');
  const toMissingDir = docker(s, ['cp', join(h, 'one.txt'), 'cp-run:/tmp/nodir/']);
  t.not(toMissingDir.status, 0, 'a file to a missing directory (trailing /) fails');

  ok(t, docker(s, ['cp', join(h, 'tree'), 'cp-run:/tmp/new']), 'dir to a new path: made with the contents');
  t.is(ok(t, docker(s, ['exec', 'cp-run', 'cat', '/tmp/new/a', '/tmp/new/sub/b']), 'cat'), 'AB');
  ok(t, docker(s, ['cp', join(h, 'tree'), 'cp-run:/tmp/new']), 'dir into an existing dir: goes inside');
  t.is(ok(t, docker(s, ['exec', 'cp-run', 'cat', '/tmp/new/tree/sub/b']), 'cat'), 'B');
  ok(t, docker(s, ['exec', 'cp-run', 'mkdir', '/tmp/dot']), 'mkdir');
  ok(t, docker(s, ['cp', `${join(h, 'tree')}/.`, 'cp-run:/tmp/dot']), 'dir/. into an existing dir: its contents');
  t.is(ok(t, docker(s, ['exec', 'cp-run', 'ls', '/tmp/dot']), 'ls'), 'a\nsub\n');

  const out = join(h, 'out');
  mkdirSync(out);
  ok(t, docker(s, ['cp', 'cp-run:/tmp/new', out]), 'cp a dir out');
  t.is(readFileSync(join(out, 'new/sub/b'), 'utf8'), 'B');
  ok(t, docker(s, ['cp', 'cp-run:/etc/hostname', join(out, 'hn')]), 'cp a file out');
  t.is(readFileSync(join(out, 'hn'), 'utf8'), ok(t, docker(s, ['exec', 'cp-run', 'cat', '/etc/hostname']), 'cat'));
  t.regex(id, /^[0-9a-f]{64}$/);
  const missing = docker(s, ['cp', 'cp-run:/nope', out]);
  t.not(missing.status, 0);
  t.regex(missing.stderr, /Could not find the file \/nope in container cp-run|No such container:path/);
});

rtest('HEAD and GET give X-Docker-Container-Path-Stat; PUT needs a directory; 404 for a missing path', async (t) => {
  const s = t.context.serve;
  ok(t, docker(s, ['run', '-d', '--name', 'cp-stat', img(t), 'sh', '-c', 'ln -s /etc/hostname /tmp/hn-link; sleep 1000']), 'run -d');
  t.teardown(() => void docker(s, ['rm', '-f', 'cp-stat']));
  const head = await request(s.socket, 'HEAD', '/v1.41/containers/cp-stat/archive?path=/etc');
  t.is(head.status, 200);
  const stat = JSON.parse(Buffer.from(String(head.headers['x-docker-container-path-stat']), 'base64').toString());
  t.is(stat.name, 'etc');
  t.true(stat.mode >= 2 ** 31, 'Go ModeDir set');
  t.is(typeof stat.mtime, 'string');
  const link = await request(s.socket, 'HEAD', '/v1.41/containers/cp-stat/archive?path=/tmp/hn-link');
  const lstat = JSON.parse(Buffer.from(String(link.headers['x-docker-container-path-stat']), 'base64').toString());
  t.true((lstat.mode & 2 ** 27) !== 0, 'Go ModeSymlink set');
  t.is(lstat.linkTarget, '/etc/hostname');
  t.is((await request(s.socket, 'HEAD', '/v1.41/containers/cp-stat/archive?path=/nope')).status, 404);
  t.is((await request(s.socket, 'GET', '/v1.41/containers/cp-stat/archive?path=/nope')).status, 404);
  const get = await request(s.socket, 'GET', '/v1.41/containers/cp-stat/archive?path=/etc/hostname');
  t.is(get.status, 200);
  t.is(get.headers['content-type'], 'application/x-tar');
  t.truthy(get.headers['x-docker-container-path-stat']);
  const put = await request(s.socket, 'PUT', '/v1.41/containers/cp-stat/archive?path=/etc/hostname', tarOf([['x', '0', 'x']]).toString('latin1'), { 'Content-Type': 'application/x-tar' });
  t.is(put.status, 400, put.body);
  const unsafe = await request(s.socket, 'PUT', '/v1.41/containers/cp-stat/archive?path=/tmp', tarOf([['../../etc/evil', '0', 'x']]).toString('latin1'), { 'Content-Type': 'application/x-tar' });
  t.is(unsafe.status, 400, unsafe.body);
  t.is(docker(s, ['exec', 'cp-stat', 'ls', '/etc/evil']).status, 1, 'no entry climbed out of /tmp');
});

rtest('created and exited containers: files copied in before start are there; copy out after exit', (t) => {
  const s = t.context.serve;
  ok(t, docker(s, ['create', '--name', 'cp-created', img(t), 'cat', '/etc/in.txt']), 'create');
  t.teardown(() => void docker(s, ['rm', '-f', 'cp-created']));
  const f = join(t.context.host, 'in.txt');
  writeFileSync(f, 'before start\n');
  ok(t, docker(s, ['cp', f, 'cp-created:/etc/in.txt']), 'cp into a created container');
  ok(t, docker(s, ['start', 'cp-created']), 'start');
  ok(t, docker(s, ['wait', 'cp-created']), 'wait');
  t.is(ok(t, docker(s, ['logs', 'cp-created']), 'logs'), 'before start\n');
  const back = join(t.context.host, 'back.txt');
  ok(t, docker(s, ['cp', 'cp-created:/etc/in.txt', back]), 'cp out of an exited container');
  t.is(readFileSync(back, 'utf8'), 'before start\n');
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(`${s.root}/containers`), 'no mount of a stopped root left in this namespace');
});

rtest('symlinks in the container stay inside its root: absolute, relative, a link to /', (t) => {
  const s = t.context.serve;
  // A host directory the container's links point at, by absolute and by climbing path.
  const victim = mkdtempSync(join(tmpdir(), 'nsbox-cp-victim-'));
  t.teardown(() => rmSync(victim, { recursive: true, force: true }));
  writeFileSync(join(victim, 'secret'), 'host secret\n');
  const climb = `../../../../../../..${victim}`;
  ok(t, docker(s, ['run', '-d', '--name', 'cp-evil', img(t), 'sh', '-c', `mkdir -p /in; ln -s ${victim} /abs; ln -s ${climb} /in/rel; ln -s / /in/root; sleep 1000`]), 'run -d');
  t.teardown(() => void docker(s, ['rm', '-f', 'cp-evil']));
  const f = join(t.context.host, 'payload');
  writeFileSync(f, 'payload\n');
  for (const dest of ['/abs/payload', '/in/rel/payload', '/in/root/tmp/payload']) {
    const r = docker(s, ['cp', f, `cp-evil:${dest}`]);
    t.false(existsSync(join(victim, 'payload')), `${dest}: nothing written in the host directory (${r.stderr})`);
  }
  // /abs resolves to <root>/<victim>, which the container does not have: refused or written inside.
  t.deepEqual(readdirSync(victim), ['secret']);
  t.is(ok(t, docker(s, ['exec', 'cp-evil', 'cat', '/tmp/payload']), 'cat'), 'payload\n', 'a link to / is the container\'s /');
  const out = join(t.context.host, 'stolen');
  for (const src of ['/abs/secret', '/in/rel/secret', '/abs/.']) {
    const r = docker(s, ['cp', `cp-evil:${src}`, out]);
    t.not(r.status, 0, `${src}: the link leads to ${victim} inside the container, which is not there`);
    t.false(existsSync(out), `${src}: nothing copied out`);
    rmSync(out, { recursive: true, force: true });
  }
});
