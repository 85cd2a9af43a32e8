/**
 * Provenance recorded at build, commit, import and pull, read back from what the store and a real
 * docker-registry on 127.0.0.1 hold: the manifest's org.opencontainers.image.* annotations and the
 * in-toto SLSA statement in an attestation manifest of the image's index (BuildKit's layout). skopeo
 * reads what nsbox pushed (`inspect --raw` shows the index with the attestation; `copy --all` to an
 * OCI layout keeps it); a pull into an empty store brings it back (`nsbox image inspect --provenance`).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { Container } from '../../lib/container.js';
import { Image } from '../../lib/image/image.js';
import { rootfs, skipIf } from './_helpers.js';
import { bin } from './api-fixture.js';
import { registryUnavailable, startRegistry, type Registry } from '../fixtures/registry.js';

interface Ctx {
  dir: string;
  root: string;
  reg: Registry;
  tar: string;
}
const test = anyTest as TestFn<Ctx>;
const reason = registryUnavailable() ?? (spawnSync('git', ['--version']).status === 0 ? undefined : 'missing git');
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'nsbox-provenance-'));
  t.context.root = join(t.context.dir, 'root');
  process.env['DOCKER_CONFIG'] = join(t.context.dir, 'docker-config');
  t.context.reg = await startRegistry();
  t.context.tar = join(t.context.dir, 'rootfs.tar');
  const r = spawnSync('tar', ['-C', rootfs(), '-cf', t.context.tar, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  await Image.import(t.context.tar, { name: `${t.context.reg.host}/base:1`, root: t.context.root });
});
test.after.always(async (t) => {
  await t.context.reg?.stop();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

interface Statement {
  predicateType: string;
  subject: Array<{ name: string; digest: { sha256: string } }>;
  predicate: {
    builder: { id: string };
    invocation: { configSource: { digest?: { sha256: string }; entryPoint?: string }; parameters: Record<string, unknown>; environment: Record<string, string> };
    metadata: Record<string, unknown>;
    materials: Array<{ uri: string; digest: Record<string, string> }>;
  };
}

rtest('build: annotations and a SLSA statement; pushed as an index skopeo reads and copies; pulled into an empty store with its provenance', async (t) => {
  const { reg, root, dir } = t.context;
  const ctx = join(dir, 'repo');
  mkdirSync(ctx);
  const dockerfile = `FROM ${reg.host}/base:1\nARG GREETING\nARG API_TOKEN\nCOPY hello.txt /hello.txt\nRUN echo "$GREETING" > /greeting\n`;
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  writeFileSync(join(ctx, 'hello.txt'), 'hello\n');
  git(ctx, 'init', '-q');
  git(ctx, 'add', '.');
  git(ctx, 'commit', '-qm', 'one');
  const head = git(ctx, 'rev-parse', 'HEAD');
  const ref = `${reg.host}/prov:1`;
  const build = spawnSync(process.execPath, [bin, 'build', '-q', '-t', ref, '--build-arg', 'GREETING=hi', '--build-arg', 'API_TOKEN=s3cret', '--label', 'org.opencontainers.image.source=https://example.org/prov.git', ctx], {
    encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: root },
  });
  t.is(build.status, 0, build.stderr);
  const image = await Image.get(ref, { root });
  const base = await Image.get(`${reg.host}/base:1`, { root });

  const local = await image.provenance();
  t.deepEqual(local.annotations, {
    'org.opencontainers.image.created': image.created!,
    'org.opencontainers.image.source': 'https://example.org/prov.git',
    'org.opencontainers.image.revision': head,
    'org.opencontainers.image.base.name': `${reg.host}/base:1`,
    'org.opencontainers.image.base.digest': base.digest,
  });
  t.is(local.statements.length, 1);
  const s = local.statements[0] as unknown as Statement;
  t.is(s.predicateType, 'https://slsa.dev/provenance/v0.2');
  t.deepEqual(s.subject, [{ name: `pkg:docker/${ref}`, digest: { sha256: image.digest.slice(7) } }]);
  t.is(s.predicate.invocation.configSource.digest?.sha256, createHash('sha256').update(dockerfile).digest('hex'), "the Dockerfile's digest");
  t.is(s.predicate.invocation.configSource.entryPoint, 'Dockerfile');
  t.deepEqual(s.predicate.invocation.parameters['instructions'], dockerfile.trim().split('\n'));
  t.deepEqual(s.predicate.invocation.parameters['args'], { GREETING: 'hi' }, 'build args, the secret-looking one left out');
  t.false(JSON.stringify(s).includes('s3cret'));
  t.regex(s.predicate.invocation.environment['user']!, new RegExp(`^\\S+@${hostname()}$`), 'who: user@host');
  t.regex(s.predicate.builder.id, /^nsbox@\d+\.\d+\.\d+/, "nsbox's version");
  t.regex(String((s.predicate.metadata['https://github.com/nsbox/nsbox/provenance'] as Record<string, string>)['context']), /^sha256:[0-9a-f]{64}$/, "the context's digest");
  t.deepEqual(s.predicate.materials, [
    { uri: `pkg:docker/${reg.host}/base:1`, digest: { sha256: base.digest.slice(7) } },
    { uri: 'https://example.org/prov.git', digest: { sha1: head } },
  ]);

  const pushed = await Image.push(ref, { root });
  // skopeo reads the index nsbox pushed, with the attestation manifest BuildKit's way
  const raw = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`], { encoding: 'utf8' });
  t.is(raw.status, 0, raw.stderr);
  t.is(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, pushed.digest);
  const index = JSON.parse(raw.stdout) as { mediaType: string; manifests: Array<{ digest: string; platform: { os: string; architecture: string }; annotations?: Record<string, string> }> };
  t.is(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  t.is(index.manifests.length, 2);
  t.is(index.manifests[0]!.digest, pushed.manifest);
  const att = index.manifests[1]!;
  t.deepEqual(att.platform, { architecture: 'unknown', os: 'unknown' });
  t.deepEqual(att.annotations, { 'vnd.docker.reference.digest': pushed.manifest, 'vnd.docker.reference.type': 'attestation-manifest' });
  const inspect = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' });
  t.is(inspect.status, 0, inspect.stderr);
  const oci = join(dir, 'skopeo-oci');
  const copy = spawnSync('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${ref}`, `oci:${oci}:prov`], { encoding: 'utf8' });
  t.is(copy.status, 0, copy.stderr);
  const copiedIndex = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  t.is(copiedIndex.manifests[0]!.digest, pushed.digest, 'skopeo kept the index as pushed');
  const attManifest = JSON.parse(readFileSync(join(oci, 'blobs', 'sha256', att.digest.slice(7)), 'utf8')) as { layers: Array<{ mediaType: string; digest: string }> };
  t.is(attManifest.layers[0]!.mediaType, 'application/vnd.in-toto+json');
  const copied = JSON.parse(readFileSync(join(oci, 'blobs', 'sha256', attManifest.layers[0]!.digest.slice(7)), 'utf8')) as Statement;
  t.deepEqual(copied.subject[0]!.digest, { sha256: pushed.manifest.slice(7) }, 'the subject names the manifest the registry holds');

  // a pull into an empty store brings the provenance back
  const elsewhere = join(dir, 'elsewhere');
  const cli = spawnSync(process.execPath, [bin, 'pull', ref], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: elsewhere } });
  t.is(cli.status, 0, cli.stderr);
  const shown = spawnSync(process.execPath, [bin, 'image', 'inspect', '--provenance', ref], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: elsewhere } });
  t.is(shown.status, 0, shown.stderr);
  const [p] = JSON.parse(shown.stdout) as Array<{ Digest: string; annotations: Record<string, string>; statements: Statement[]; Journal: Record<string, Array<{ by: string; from: string }>> }>;
  t.is(p!.Digest, pushed.manifest);
  t.is(p!.annotations['org.opencontainers.image.revision'], head);
  t.is(p!.annotations['org.opencontainers.image.base.digest'], base.digest);
  t.deepEqual(p!.statements[0]!.predicate.invocation.parameters['args'], { GREETING: 'hi' });
  t.is(p!.statements[0]!.predicate.invocation.configSource.digest?.sha256, s.predicate.invocation.configSource.digest?.sha256);
  t.is(p!.Journal[ref]![0]!.by, 'pull', 'the pull itself is in the tag journal: when, who, from where');
  t.is(p!.Journal[ref]![0]!.from, ref);
});

rtest('commit (SDK container.commit) and import: who, when, how, from what', async (t) => {
  const { root, tar } = t.context;
  const imported = await Image.import(tar, { name: 'imported:1', root });
  const ip = await imported.provenance();
  t.is(ip.annotations['org.opencontainers.image.created'], imported.created!);
  const is = ip.statements[0] as unknown as Statement;
  t.is(is.predicate.invocation.parameters['kind'], 'import');
  t.deepEqual(is.subject[0]!.digest, { sha256: imported.digest.slice(7) });

  const c = await Container.run({ image: 'imported:1', imageRoot: root, pull: 'never', command: ['sh', '-c', 'echo committed > /made; echo ready; exec sleep 1000'] });
  t.teardown(() => c.remove());
  await new Promise<void>((resolve) => c.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
  const committed = await c.commit({ reference: 'committed:1', author: 'Ada <ada@example.org>', comment: 'from a test', changes: ['CMD ["cat", "/made"]'] });
  t.is(c.state, 'running', 'the container runs on after the commit');
  const cp = await committed.provenance();
  t.is(cp.annotations['org.opencontainers.image.base.digest'], imported.digest);
  t.is(cp.annotations['org.opencontainers.image.base.name'], 'imported:1');
  const cs = cp.statements[0] as unknown as Statement;
  t.is(cs.predicate.invocation.parameters['kind'], 'commit');
  t.is(cs.predicate.invocation.parameters['container'], c.id);
  t.is(cs.predicate.invocation.parameters['comment'], 'from a test');
  t.deepEqual(cs.predicate.invocation.parameters['changes'], ['CMD ["cat", "/made"]']);
  t.is((cs.predicate.metadata['https://github.com/nsbox/nsbox/provenance'] as Record<string, string>)['author'], 'Ada <ada@example.org>');
  t.deepEqual((await Image.log('committed:1', { root })).map((e) => e.by), ['commit']);
  const run = await Container.run({ image: 'committed:1', imageRoot: root, pull: 'never' });
  t.teardown(() => run.remove());
  let out = '';
  run.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await run.wait();
  t.is(out, 'committed\n');
});
