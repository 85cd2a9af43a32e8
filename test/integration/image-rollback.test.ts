/**
 * Tag journals and rollback against a real docker-registry on 127.0.0.1: build v1, build v2 under
 * the same tag, `nsbox image log` lists both; `nsbox rollback` moves the tag back (its digest is
 * v1's and `run` runs v1) while a container started from v2 keeps running v2; prune and rmi keep
 * the version the journal needs unless `--forget`; `rollback --push` moves the registry's tag
 * (read back from the registry's own API and by skopeo). Bad input: a tag that points nowhere, a
 * rollback to a digest the tag never had; nothing changes locally.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { buildImage } from '../../lib/build/index.js';
import { Image } from '../../lib/image/image.js';
import { rootfs, skipIf } from './_helpers.js';
import { bin } from './api-fixture.js';
import { registryUnavailable, startRegistry, type Registry } from '../fixtures/registry.js';

interface Ctx {
  dir: string;
  root: string;
  reg: Registry;
  dockerConfig: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = registryUnavailable();
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'nsbox-rollback-'));
  t.context.root = join(t.context.dir, 'root');
  t.context.dockerConfig = join(t.context.dir, 'docker-config');
  mkdirSync(t.context.dockerConfig);
  process.env['DOCKER_CONFIG'] = t.context.dockerConfig;
  t.context.reg = await startRegistry();
  const tar = join(t.context.dir, 'rootfs.tar');
  const r = spawnSync('tar', ['-C', rootfs(), '-cf', tar, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  await Image.import(tar, { name: 'busybox', root: t.context.root });
});
test.after.always(async (t) => {
  if (t.context.root) {
    for (const name of ['keeper']) cli(t, ['rm', '-f', name]);
  }
  await t.context.reg?.stop();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

function cli(t: { context: Ctx }, args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NSBOX_ROOT: t.context.root, DOCKER_CONFIG: t.context.dockerConfig },
  });
}

async function buildVersion(t: { context: Ctx }, tag: string, version: string): Promise<Image> {
  const ctx = join(t.context.dir, `ctx-${version}`);
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), `FROM busybox\nRUN echo ${version} > /version\nCMD ["cat", "/version"]\n`);
  return buildImage({ context: ctx, root: t.context.root, tags: [tag] });
}

/** The digest the registry serves for a tag (its Docker-Content-Digest, from a HEAD of the manifest). */
function registryDigest(reg: Registry, repo: string, tag: string): string | undefined {
  const r = spawnSync('curl', ['-sfI', '-H', 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json', `http://${reg.host}/v2/${repo}/manifests/${tag}`], { encoding: 'utf8' });
  return /^docker-content-digest:\s*(\S+)/im.exec(r.stdout)?.[1];
}

rtest('build v1, build v2 under one tag: image log lists both; rollback moves the tag to v1 and run runs v1; a container of v2 keeps v2; prune and rmi keep v2 unless --forget', async (t) => {
  const tag = 'app:1';
  const v1 = await buildVersion(t, tag, 'v1');
  const v2 = await buildVersion(t, tag, 'v2');
  t.not(v1.digest, v2.digest);
  t.deepEqual((await Image.log(tag, { root: t.context.root })).map((e) => [e.digest, e.by]), [[v1.digest, 'build'], [v2.digest, 'build']]);

  const log = cli(t, ['image', 'log', tag]);
  t.is(log.status, 0, log.stderr);
  const rows = log.stdout.trim().split('\n').slice(1);
  t.regex(rows[0]!, new RegExp(`^\\*\\s+${v2.digest.slice(0, 19)}\\s+\\S+\\s+build\\s+\\S+@\\S+`), log.stdout);
  t.regex(rows[1]!, new RegExp(`^-1\\s+${v1.digest.slice(0, 19)}\\s+\\S+\\s+build\\s`), log.stdout);

  const keeper = cli(t, ['run', '-d', '--name', 'keeper', tag, 'sleep', '1000']);
  t.is(keeper.status, 0, keeper.stderr);

  const back = cli(t, ['rollback', tag]);
  t.is(back.status, 0, back.stderr);
  t.is(back.stdout, `app:1: ${v2.digest} -> ${v1.digest}\n`);
  t.is((await Image.get(tag, { root: t.context.root })).digest, v1.digest, "the tag's digest is v1's");
  const run = cli(t, ['run', '--rm', tag]);
  t.is(run.status, 0, run.stderr);
  t.is(run.stdout, 'v1\n', 'run runs v1');
  t.is(cli(t, ['exec', 'keeper', 'cat', '/version']).stdout, 'v2\n', 'the running container keeps its own image');
  const inspected = JSON.parse(cli(t, ['inspect', 'keeper']).stdout) as Array<{ image: { digest: string } }>;
  t.is(inspected[0]!.image.digest, v2.digest);
  t.is(cli(t, ['rm', '-f', 'keeper']).status, 0);

  const journal = await Image.log(tag, { root: t.context.root });
  t.deepEqual(journal.at(-1), { ...journal.at(-1)!, digest: v1.digest, by: 'rollback', from: v2.digest });

  // v2 is dangling now, but the journal of app:1 keeps it for a rollback
  const ids = () => cli(t, ['images', '-q', '--no-trunc']).stdout;
  const prune = cli(t, ['image', 'prune', '-f']);
  t.is(prune.status, 0, prune.stderr);
  t.true(ids().includes(v2.id), 'prune kept the version the journal needs');
  const rmi = cli(t, ['rmi', v2.id]);
  t.is(rmi.status, 1);
  t.regex(rmi.stderr, /kept for rollback by the journal of app:1 \(nsbox image log app:1\): remove it with --forget/);
  t.true(ids().includes(v2.id));
  // rollback -1 now goes forward again (the journal's previous line), then back with --to
  t.is(cli(t, ['rollback', tag, '-1']).status, 0);
  t.is((await Image.get(tag, { root: t.context.root })).digest, v2.digest);
  const to = cli(t, ['rollback', '--to', v1.digest.slice(7, 19), tag]);
  t.is(to.status, 0, to.stderr);
  t.is((await Image.get(tag, { root: t.context.root })).digest, v1.digest);

  const forget = cli(t, ['image', 'prune', '-f', '--forget']);
  t.is(forget.status, 0, forget.stderr);
  t.regex(forget.stdout, new RegExp(`deleted: ${v2.id}`));
  t.false(ids().includes(v2.id), '--forget removed it');
  t.false((await Image.log(tag, { root: t.context.root })).some((e) => e.digest === v2.digest), 'and dropped it from the journal');
  const gone = cli(t, ['rollback', '--to', v2.digest, tag]);
  t.is(gone.status, 125);
  t.regex(gone.stderr, /never pointed to/);
});

rtest('rollback --push moves the tag on the registry too (its API and skopeo say so); the SDK does the same', async (t) => {
  const { reg, root } = t.context;
  const tag = `${reg.host}/web:1`;
  await buildVersion(t, tag, 'w1');
  const first = await Image.push(tag, { root });
  await buildVersion(t, tag, 'w2');
  const second = await Image.push(tag, { root });
  t.not(first.digest, second.digest);
  t.is(registryDigest(reg, 'web', '1'), second.digest);

  const back = cli(t, ['rollback', '--push', tag]);
  t.is(back.status, 0, back.stderr);
  t.regex(back.stdout, new RegExp(`1: digest: ${first.digest} size: \\d+\\n$`));
  t.is(registryDigest(reg, 'web', '1'), first.digest, "the registry's tag moved back");
  const skopeo = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${tag}`], { encoding: 'utf8' });
  t.is(skopeo.status, 0, skopeo.stderr);
  t.is(`sha256:${createHash('sha256').update(skopeo.stdout).digest('hex')}`, first.digest);
  // the image pulled elsewhere is v1
  const elsewhere = join(t.context.dir, 'elsewhere');
  const pulled = await Image.pull(tag, { root: elsewhere });
  t.is(pulled.digest, first.manifest);
  const run = spawnSync(process.execPath, [bin, 'run', '--rm', tag], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: elsewhere } });
  t.is(run.stdout, 'w1\n', run.stderr);

  // SDK: forward again, pushed
  const sdk = await Image.rollback(tag, { root, to: -1, push: true });
  t.is(sdk.pushed?.digest, second.digest);
  t.is(registryDigest(reg, 'web', '1'), second.digest);
});

rtest('bad input: a tag that points nowhere, a rollback past the journal, a digest it never had: clear errors, nothing changed', async (t) => {
  const before = readFileSync(join(t.context.root, 'images.json'), 'utf8');
  const nowhere = cli(t, ['rollback', 'nothing:here']);
  t.is(nowhere.status, 125);
  t.regex(nowhere.stderr, /nothing:here has no journal to roll back along|No such image/);
  const log = cli(t, ['image', 'log', 'nothing:here']);
  t.is(log.status, 125);
  t.regex(log.stderr, /No such image: nothing:here/);
  const push = cli(t, ['push', `${t.context.reg.host}/nothing:here`]);
  t.is(push.status, 125);
  t.regex(push.stderr, /An image does not exist locally with the tag/);
  const far = cli(t, ['rollback', 'app:1', '-9']);
  t.is(far.status, 125);
  t.regex(far.stderr, /its journal has \d+ earlier entr(y|ies), not 9/);
  const never = cli(t, ['rollback', '--to', 'sha256:' + '0'.repeat(64), 'app:1']);
  t.is(never.status, 125);
  t.regex(never.stderr, /app:1 never pointed to sha256:0{64}/);
  t.is(readFileSync(join(t.context.root, 'images.json'), 'utf8'), before, 'the store is as it was');
});
