/**
 * commit, diff and history of real containers (the busybox fixture imported into a temp store):
 * through the engine (the SDK's Engine), the nsbox CLI, and the docker CLI against `nsbox serve`.
 * The committed layer is read back as a tar (whiteouts as OCI writes them) and the image run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Engine } from '../../lib/engine/engine.js';
import { Image } from '../../lib/image/image.js';
import { isRoot, rootfs, skipIf } from './_helpers.js';
import { apiUnavailable, bin, cleanup, docker, startServe } from './api-fixture.js';

interface Ctx {
  dir: string;
  root: string;
  tar: string;
  engine: Engine;
}
const test = anyTest as TestFn<Ctx>;
const rtest = skipIf(isRoot ? undefined : 'needs root', test.serial);

test.before(async (t) => {
  if (!isRoot) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'nsbox-commit-'));
  t.context.root = join(t.context.dir, 'root');
  t.context.tar = join(t.context.dir, 'rootfs.tar');
  const r = spawnSync('tar', ['-C', rootfs(), '-cf', t.context.tar, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  await Image.import(t.context.tar, { name: 'busybox', root: t.context.root });
  t.context.engine = await Engine.open({ root: t.context.root });
});
test.after.always(async (t) => {
  if (t.context.engine) for (const r of await t.context.engine.list({ all: true })) await t.context.engine.remove(r.id, { force: true }).catch(() => {});
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

async function runToEnd(engine: Engine, image: string, command: string[]): Promise<string> {
  const r = await engine.create({ options: { image, command } });
  await engine.start(r.id);
  await engine.wait(r.id);
  return r.id;
}

function cli(t: { context: Ctx }, args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.root } });
}

rtest('engine: diff lists A/C/D; commit makes a layer with OCI whiteouts, the container\'s config and -c changes; the image runs; history shows it', async (t) => {
  const { engine, root } = t.context;
  const id = await runToEnd(engine, 'busybox', ['sh', '-c', 'echo new > /new.txt; rm /etc/group; mkdir /d; echo x > /d/f; echo more >> /etc/passwd']);
  const changes = await engine.changes(id);
  const has = (kind: string, path: string) => changes.some((c) => c.kind === kind && c.path === path);
  t.true(has('A', '/new.txt'), JSON.stringify(changes));
  t.true(has('D', '/etc/group'));
  t.true(has('C', '/etc'));
  t.true(has('C', '/etc/passwd'));
  t.true(has('A', '/d'));
  t.true(has('A', '/d/f'));
  t.deepEqual(changes.map((c) => c.path), [...changes.map((c) => c.path)].sort());

  const events: string[] = [];
  engine.on('event', (e: { action: string }) => events.push(e.action));
  const image = await engine.commit(id, { reference: 'committed:1', author: 'Ann <ann@example.com>', comment: 'first commit', changes: ['CMD ["cat", "/new.txt"]', 'ENV FOO=bar'] });
  t.true(events.includes('commit'));
  const base = await Image.get('busybox', { root });
  t.is(image.layers.length, base.layers.length + 1);
  t.is(image.config.author, 'Ann <ann@example.com>');
  t.deepEqual(image.config.config?.Cmd, ['cat', '/new.txt']);
  t.true(image.config.config?.Env?.includes('FOO=bar'));
  const top = image.layers.at(-1)!;
  const tar = spawnSync('tar', ['-tf', join(root, 'blobs', 'sha256', top.digest.slice(7))], { encoding: 'utf8' });
  const entries = tar.stdout.split('\n');
  t.true(entries.includes('etc/.wh.group'), tar.stdout);
  t.true(entries.includes('new.txt'));

  const out = await engine.create({ options: { image: 'committed:1' } });
  await engine.start(out.id, { awaitAttach: true });
  t.deepEqual(await engine.wait(out.id), { exitCode: 0 });
  const check = await engine.create({ options: { image: 'committed:1', command: ['sh', '-c', 'test ! -e /etc/group && test "$FOO" = bar && cat /d/f'] } });
  await engine.start(check.id);
  t.deepEqual(await engine.wait(check.id), { exitCode: 0 }, 'the deletion, the env and the new directory are in the image');

  const history = await engine.images.history('committed:1');
  t.is(history.length, (base.history().length || 1) + 1);
  t.is(history[0]!.id, image.id);
  t.is(history[0]!.comment, 'first commit');
  t.regex(history[0]!.createdBy, /echo new > \/new.txt/);
  t.is(history[1]!.id, base.id, 'the parent is a local image');
});

rtest('engine: committing a running container freezes it for the read and leaves it running', async (t) => {
  const { engine } = t.context;
  const r = await engine.create({ options: { image: 'busybox', command: ['sleep', '1000'] } });
  await engine.start(r.id);
  const image = await engine.commit(r.id, { reference: 'running:1' });
  t.is((await engine.get(r.id)).state, 'running');
  t.truthy(image.id);
  await engine.remove(r.id, { force: true });
});

rtest('CLI: nsbox diff, commit -a -m -c, run the image, history (table, --no-trunc --format, <missing> once the parent is gone)', async (t) => {
  const run = cli(t, ['run', '--name', 'c2', 'busybox', 'sh', '-c', 'echo hi > /hi']);
  t.is(run.status, 0, run.stderr);
  const diff = cli(t, ['diff', 'c2']);
  t.is(diff.status, 0, diff.stderr);
  t.true(diff.stdout.split('\n').includes('A /hi'), diff.stdout);
  const commit = cli(t, ['commit', '-a', 'me', '-m', 'a note', '-c', 'CMD ["cat", "/hi"]', 'c2', 'cli:1']);
  t.is(commit.status, 0, commit.stderr);
  t.regex(commit.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const out = cli(t, ['run', '--rm', 'cli:1']);
  t.is(out.stdout, 'hi\n', out.stderr);
  const table = cli(t, ['history', 'cli:1']);
  t.is(table.status, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  t.regex(lines[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  t.regex(lines[1]!, new RegExp(`^${commit.stdout.slice(7, 19)}\\s+.*a note$`));
  // the parent goes (with every container made from it): its entry is <missing> now
  for (const r of await t.context.engine.list({ all: true })) await t.context.engine.remove(r.id, { force: true });
  const rmi = cli(t, ['rmi', 'busybox']);
  t.is(rmi.status, 0, rmi.stderr);
  const fmt = cli(t, ['history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Comment}}', 'cli:1']);
  const rows = fmt.stdout.trim().split('\n');
  t.is(rows[0], `${commit.stdout.trim()}|sh -c echo hi > /hi|a note`);
  t.true(rows.slice(1).every((r) => r.startsWith('<missing>|')), fmt.stdout);
});

const dtest = skipIf(apiUnavailable({ docker: true }), test.serial);
dtest('docker CLI against nsbox serve: docker diff, docker commit, docker history', async (t) => {
  const serve = await startServe();
  t.teardown(() => cleanup(serve));
  t.is(docker(serve, ['import', t.context.tar, 'busybox']).status, 0);
  const run = docker(serve, ['run', '--name', 'd1', 'busybox', 'sh', '-c', 'echo hey > /hey; rm /etc/group']);
  t.is(run.status, 0, run.stderr);
  const diff = docker(serve, ['diff', 'd1']);
  t.is(diff.status, 0, diff.stderr);
  const lines = diff.stdout.split('\n');
  t.true(lines.includes('A /hey') && lines.includes('D /etc/group') && lines.includes('C /etc'), diff.stdout);
  const commit = docker(serve, ['commit', '-m', 'via docker', '-c', 'CMD ["cat", "/hey"]', 'd1', 'viadocker:1']);
  t.is(commit.status, 0, commit.stderr);
  t.regex(commit.stdout, /^sha256:[0-9a-f]{64}/);
  const out = docker(serve, ['run', '--rm', 'viadocker:1']);
  t.is(out.stdout, 'hey\n', out.stderr);
  const history = docker(serve, ['history', '--no-trunc', '--format', '{{.ID}}|{{.Comment}}', 'viadocker:1']);
  t.is(history.status, 0, history.stderr);
  t.is(history.stdout.split('\n')[0], `${commit.stdout.trim()}|via docker`);
});
