/**
 * docker import, with no registry: a root filesystem tar (plain, gzipped, from stdin, a file or a
 * loopback URL) becomes a one-layer image that runs; through the CLI (the real binary) and through
 * `nsbox serve` with the docker CLI 28 (`docker import - busybox`, then `docker run --rm busybox`).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { isRoot, rootfs, skipIf } from './_helpers.js';
import { bin, cleanup, docker, startServe } from './api-fixture.js';

interface Ctx {
  dir: string;
  root: string;
  tar: string;
}
const test = anyTest as TestFn<Ctx>;
const dist = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const reason = !isRoot ? 'needs root' : !existsSync(dist) ? 'dist/ is not built (npm test builds it)' : undefined;
const rtest = skipIf(reason, test.serial);

function nsbox(t: { context: Ctx }, args: string[], input?: string | Buffer): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input: input ?? '', env: { ...process.env, NSBOX_ROOT: t.context.root }, timeout: 60_000 });
}

test.before((t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'nsbox-import-'));
  t.context.root = join(t.context.dir, 'root');
  t.context.tar = join(t.context.dir, 'rootfs.tar');
  const tar = spawnSync('tar', ['-C', rootfs(), '-cf', t.context.tar, '.']);
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
});
test.after.always(async (t) => {
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

rtest('import - from stdin with --change, then run it; the config and history are docker\'s', (t) => {
  const tar = readFileSync(t.context.tar);
  const r = nsbox(t, ['import', '-c', 'CMD ["sh", "-c", "echo A=$A in $(pwd)"]', '-c', 'ENV A=1', '--change', 'WORKDIR /tmp', '-m', 'from a pipe', '-', 'busybox'], tar);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const id = r.stdout.trim();
  t.regex(nsbox(t, ['images']).stdout, new RegExp(`\\nbusybox\\s+latest\\s+${id.slice(7, 19)}\\s`));
  const run = nsbox(t, ['run', '--rm', 'busybox']);
  t.is(run.stdout, 'A=1 in /tmp\n', run.stderr);
  t.is(nsbox(t, ['run', '--rm', 'busybox', 'sh', '-c', 'echo $A']).stdout, '1\n');
  const [inspect] = JSON.parse(nsbox(t, ['inspect', 'busybox']).stdout) as Array<Record<string, any>>;
  t.is(inspect!['Id'], id);
  t.is(inspect!['Comment'], 'from a pipe');
  t.is(inspect!['Os'], 'linux');
  t.deepEqual(inspect!['RootFS']?.['Layers']?.length, 1);
});

rtest('import of a gzipped file with a tag, a dangling import, and a file that is not a tar', (t) => {
  const gz = join(t.context.dir, 'rootfs.tar.gz');
  t.is(spawnSync('sh', ['-c', `gzip -c ${t.context.tar} > ${gz}`]).status, 0);
  const r = nsbox(t, ['import', '--change', 'CMD ["echo", "gz"]', gz, 'zipped:v2']);
  t.is(r.status, 0, r.stderr);
  t.is(nsbox(t, ['run', '--rm', 'zipped:v2']).stdout, 'gz\n');
  const dangling = nsbox(t, ['import', t.context.tar]);
  t.is(dangling.status, 0, dangling.stderr);
  t.regex(nsbox(t, ['images']).stdout, new RegExp(`\\n<none>\\s+<none>\\s+${dangling.stdout.trim().slice(7, 19)}\\s`));

  const junk = join(t.context.dir, 'junk');
  writeFileSync(junk, 'this is not a tar\n'.repeat(100));
  const bad = nsbox(t, ['import', junk, 'junk']);
  t.is(bad.status, 125);
  t.regex(bad.stderr, /not a tar archive/);
  const change = nsbox(t, ['import', '-c', 'RUN make', t.context.tar, 'x']);
  t.is(change.status, 125);
  t.regex(change.stderr, /RUN is not a valid change command/);
  const missing = nsbox(t, ['import', join(t.context.dir, 'nope.tar')]);
  t.is(missing.status, 125);
  t.regex(missing.stderr, /nope\.tar/);
  t.false(nsbox(t, ['images']).stdout.includes('junk'), 'nothing is stored for a bad import');
});

rtest('import of an http URL (a server on loopback), and of one that answers 404', async (t) => {
  const server = http.createServer((req, res) => {
    if (req.url === '/rootfs.tar') createReadStream(t.context.tar).pipe(res);
    else res.writeHead(404).end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    // Not spawnSync: the server is in this process.
    import('node:child_process').then(({ execFile }) =>
      execFile(process.execPath, [bin, 'import', '-c', 'CMD ["echo", "fetched"]', `${base}/rootfs.tar`, 'fetched:1'], { env: { ...process.env, NSBOX_ROOT: t.context.root } }, (err, stdout, stderr) =>
        resolve({ status: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }),
      ),
    );
  });
  t.is(r.status, 0, r.stderr);
  t.is(nsbox(t, ['run', '--rm', 'fetched:1']).stdout, 'fetched\n');
  const gone = await new Promise<{ code: number; stderr: string }>((resolve) => {
    import('node:child_process').then(({ execFile }) =>
      execFile(process.execPath, [bin, 'import', `${base}/missing.tar`], { env: { ...process.env, NSBOX_ROOT: t.context.root } }, (err, _o, stderr) =>
        resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr }),
      ),
    );
  });
  t.is(gone.code, 125);
  t.regex(gone.stderr, /answered 404/);
});

rtest('the docker CLI through nsbox serve: docker import - busybox, then docker run --rm busybox echo hi', async (t) => {
  // A test's t.context is its own copy of the before hook's: the server is torn down here.
  const serve = await startServe();
  t.teardown(() => cleanup(serve));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_')));
  const imp = spawnSync('sh', ['-c', `tar -C '${rootfs()}' -c . | docker -H unix://${serve.socket} import -c 'ENV GREETING=hello' - busybox`], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...env, DOCKER_CONFIG: join(serve.dir, 'docker-config') },
  });
  t.is(imp.status, 0, imp.stderr);
  t.regex(imp.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const run = docker(serve, ['run', '--rm', 'busybox', 'echo', 'hi']);
  t.is(run.status, 0, run.stderr);
  t.is(run.stdout, 'hi\n');
  t.is(docker(serve, ['run', '--rm', 'busybox', 'sh', '-c', 'echo $GREETING']).stdout, 'hello\n');
  t.regex(docker(serve, ['images']).stdout, /\nbusybox\s+latest\s+[0-9a-f]{12}\s/);
  const bad = spawnSync('sh', ['-c', `echo not a tar | docker -H unix://${serve.socket} import - junk`], { encoding: 'utf8', timeout: 30_000, env: { ...env, DOCKER_CONFIG: join(serve.dir, 'docker-config') } });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /Error response from daemon: .*(not a tar|empty)/);
});
