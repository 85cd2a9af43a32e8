/**
 * RUN's options against the real kernel: --mount=type=cache (kept between builds, out of the key
 * and the layer), type=secret (from the build's secrets and `nsbox build --secret`; never in a
 * layer, the history, the config or the key), type=bind (from the context, a stage, rw writes
 * dropped), type=tmpfs, and --network. Each result is run and its layer tars read.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Image } from '../../lib/image/image.js';
import { bin } from './api-fixture.js';
import { build, buildSuite, cachedCount as cached, context, run, type BuildCtx } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-run-');

/** The names in the image's layers above busybox's one. */
function newEntries(t: { context: BuildCtx }, image: Image): string[] {
  return image.layers.slice(1).flatMap((l) => {
    const r = spawnSync('tar', ['-tf', join(t.context.root, 'blobs', 'sha256', l.digest.slice(7))], { encoding: 'utf8' });
    return r.stdout.trim().split('\n').filter(Boolean);
  });
}


rtest('RUN --mount=type=cache: the directory is kept between builds, owned as asked, not in the layer nor the key', async (t) => {
  const dir = context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/var/cache/app,uid=123,gid=45,mode=0750 echo x >> /var/cache/app/log && wc -l < /var/cache/app/log > /count && stat -c %u:%g:%a /var/cache/app > /owner\n' });
  const one = await build(t, dir);
  t.is(await run(t, one.image.digest, ['cat', '/count', '/owner']), '1\n123:45:750\n');
  const two = await build(t, dir, { noCache: true });
  t.is(await run(t, two.image.digest, ['cat', '/count']), '2\n', 'the second build saw the first one\'s file');
  t.deepEqual(newEntries(t, two.image).sort(), ['count', 'owner']);
  // a third build with the cache on is all cached: the mount's contents changed, the key did not
  const three = await build(t, dir);
  t.is(cached(three.events), 1);
  // sharing=locked, an id shared by two targets, and a scratch-like image without /var
  const shared = context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=cache,id=shared,target=/a,sharing=locked echo a > /a/f\nRUN --mount=type=cache,id=shared,target=/b,sharing=private cat /b/f > /seen\n' });
  const s = await build(t, shared);
  t.is(await run(t, s.image.digest, ['cat', '/seen']), 'a\n');
  t.deepEqual(newEntries(t, s.image), ['seen']);
});

rtest('RUN --mount=type=secret: readable at /run/secrets/<id> and a target, never in a layer, the history, the config or the key', async (t) => {
  const secret = 'TOPSECRET-value-4711';
  const dir = context(t, {
    Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /len && stat -c %a:%u /run/secrets/tok > /mode\nRUN --mount=type=secret,id=tok,target=/etc/tok.txt,mode=0440,uid=7 stat -c %a:%u /etc/tok.txt >> /mode && md5sum < /etc/tok.txt > /sum\n',
  });
  const one = await build(t, dir, { secrets: { tok: secret } });
  t.is(await run(t, one.image.digest, ['cat', '/len', '/mode']), `${secret.length}\n400:0\n440:7\n`);
  t.deepEqual(newEntries(t, one.image).sort(), ['len', 'mode', 'mode', 'sum'].sort());
  const configText = JSON.stringify(one.image.config);
  t.false(configText.includes(secret));
  for (const l of one.image.layers) t.false(readFileSync(join(t.context.root, 'blobs', 'sha256', l.digest.slice(7))).includes(secret));
  t.false(JSON.stringify(one.image.history()).includes(secret));
  // a different value: the steps are cached (the value is not in the key)
  const other = await build(t, dir, { secrets: { tok: 'another' } });
  t.is(cached(other.events), 2);
  t.is(other.image.digest, one.image.digest);
  // missing and not required: no file; required: a clear error
  const optional = await build(t, context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=nope test ! -e /run/secrets/nope && echo absent > /r\n' }));
  t.is(await run(t, optional.image.digest, ['cat', '/r']), 'absent\n');
  await t.throwsAsync(build(t, context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=nope,required echo no\n' })), { message: /secret nope: not provided/ });

  // the CLI's --secret from a file and from the environment
  const file = join(t.context.dir, 'secret.txt');
  writeFileSync(file, 'from-a-file');
  const cliDir = context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=f --mount=type=secret,id=e cat /run/secrets/f /run/secrets/e > /both\n' });
  const env = { ...process.env, NSBOX_ROOT: t.context.root, MY_SECRET: '+from-env' };
  const r = spawnSync(process.execPath, [bin, 'build', '-q', '-t', 'secret-cli:1', '--secret', `id=f,src=${file}`, '--secret', 'id=e,env=MY_SECRET', cliDir], { encoding: 'utf8', env, timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  t.is(await run(t, 'secret-cli:1', ['cat', '/both']), 'from-a-file+from-env');
  const badKey = spawnSync(process.execPath, [bin, 'build', '--secret', 'id=f,color=red', cliDir], { encoding: 'utf8', env, timeout: 120_000 });
  t.is(badKey.status, 125);
  t.regex(badKey.stderr, /unexpected key 'color'/);
});

rtest('RUN --mount=type=bind: the context (by default), a stage, rw writes dropped; its content is in the key', async (t) => {
  const dir = context(t, {
    'src/a.txt': 'from the context\n',
    Dockerfile: [
      'FROM busybox AS data',
      'RUN mkdir /data && echo from-stage > /data/x',
      'FROM busybox',
      'RUN --mount=type=bind,source=src,target=/mnt/ctx cat /mnt/ctx/a.txt > /got-ctx',
      'RUN --mount=type=bind,from=data,source=/data,target=/mnt/st,rw echo scribble > /mnt/st/new && cat /mnt/st/x > /got-stage',
      'RUN --mount=type=bind,from=data,source=/data/x,target=/one cat /one > /got-file',
      'RUN --mount=type=bind,target=/m if touch /m/src/a.txt 2>/dev/null; then echo writable; else echo readonly; fi > /ro',
      '',
    ].join('\n'),
  });
  const one = await build(t, dir);
  t.is(await run(t, one.image.digest, ['cat', '/got-ctx', '/got-stage', '/got-file', '/ro']), 'from the context\nfrom-stage\nfrom-stage\nreadonly\n');
  const entries = newEntries(t, one.image);
  t.false(entries.some((e) => e.startsWith('mnt/st') || e === 'one' || e === 'm' || e.startsWith('m/')), entries.join(' '));
  // the stage's data is untouched by the rw mount
  const again = await build(t, dir);
  t.is(cached(again.events), 5);
  // a changed context file misses that RUN
  writeFileSync(join(dir, 'src', 'a.txt'), 'changed\n');
  const changed = await build(t, dir);
  t.is(await run(t, changed.image.digest, ['cat', '/got-ctx']), 'changed\n');
});

rtest('RUN --mount=type=tmpfs and --network=none|host|default', async (t) => {
  const dir = context(t, {
    Dockerfile: [
      'FROM busybox',
      'RUN --mount=type=tmpfs,target=/scratch,size=1m echo hi > /scratch/f && grep " /scratch " /proc/mounts | cut -d" " -f3 > /fstype',
      'RUN --network=none readlink /proc/self/ns/net > /none',
      'RUN --network=host readlink /proc/self/ns/net > /host',
      'RUN --network=default readlink /proc/self/ns/net > /default',
      '',
    ].join('\n'),
  });
  const { image } = await build(t, dir, { network: 'host' });
  const hostNs = readlinkSync('/proc/self/ns/net');
  const out = (await run(t, image.digest, ['cat', '/fstype', '/none', '/host', '/default'])).split('\n');
  t.is(out[0], 'tmpfs');
  t.not(out[1], hostNs);
  t.is(out[2], hostNs);
  t.is(out[3], hostNs, 'default is the build\'s network (host here)');
  t.false(newEntries(t, image).some((e) => e.startsWith('scratch')));
  await t.throwsAsync(build(t, context(t, { Dockerfile: 'FROM busybox\nRUN --network=bridge true\n' })), { message: /--network=bridge/ });
  await t.throwsAsync(build(t, context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=nfs,target=/x true\n' })), { message: /Dockerfile:2: RUN : --mount: unsupported mount type "nfs"/ });
  const runs = join('/run/nsbox/build');
  t.deepEqual(existsSync(runs) ? readdirSync(runs).filter((e) => e.startsWith('mounts-')) : [], [], 'no mount scratch left');
});

rtest('ADD of http(s) URLs from a server on 127.0.0.1: the name from the URL or Content-Disposition, mode 0600, Last-Modified as mtime, --checksum, keyed by content, never unpacked', async (t) => {
  const { createServer } = await import('node:http');
  const { createHash } = await import('node:crypto');
  const files: Record<string, string | Buffer> = { '/files/hello.txt': 'hello over http\n', '/dl': 'disposition\n', '/a.tar': spawnSync('tar', ['-C', context(t, { 'in-tar.txt': 'x' }), '-c', 'in-tar.txt']).stdout };
  const server = createServer((req, res) => {
    const body = files[req.url ?? ''];
    if (body === undefined) return void res.writeHead(404).end();
    const headers: Record<string, string> = { 'Last-Modified': 'Tue, 14 Nov 2023 22:13:20 GMT' };
    if (req.url === '/dl') headers['Content-Disposition'] = 'attachment; filename="named.bin"';
    res.writeHead(200, headers).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const sum = `sha256:${createHash('sha256').update(files['/files/hello.txt']!).digest('hex')}`;
  const dir = context(t, { Dockerfile: `FROM busybox\nADD ${base}/files/hello.txt /d/\nADD ${base}/dl /d/\nADD --checksum=${sum} ${base}/files/hello.txt /checked.txt\nADD --chmod=644 ${base}/files/hello.txt /moded\n` });
  const one = await build(t, dir);
  t.is(await run(t, one.image.digest, ['sh', '-c', 'cat /d/hello.txt /d/named.bin /checked.txt; stat -c "%a %u %Y %n" /d/hello.txt /d/named.bin /moded']), `hello over http\ndisposition\nhello over http\n600 0 1700000000 /d/hello.txt\n600 0 1700000000 /d/named.bin\n644 0 1700000000 /moded\n`);
  const again = await build(t, dir);
  t.is(cached(again.events), 4);
  files['/dl'] = 'changed\n';
  const changed = await build(t, dir);
  t.is(cached(changed.events), 1, 'the first ADD hits; the changed one misses and so does everything after it');
  t.is(await run(t, changed.image.digest, ['cat', '/d/named.bin']), 'changed\n');
  const tarred = await build(t, context(t, { Dockerfile: `FROM busybox\nADD ${base}/a.tar /t/\n` }));
  t.is(await run(t, tarred.image.digest, ['ls', '/t']), 'a.tar\n');
  await t.throwsAsync(build(t, context(t, { Dockerfile: `FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} ${base}/files/hello.txt /x\n` })), { message: /digest mismatch/ });
  await t.throwsAsync(build(t, context(t, { Dockerfile: `FROM busybox\nADD ${base}/missing /x\n` })), { message: /failed to fetch .*404/ });
});

rtest('RUN --mount=type=secret,env=NAME: a variable of that RUN only (no file), or both with a target; never in the config, history or a layer', async (t) => {
  const dir = context(t, {
    Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=tok,env=TOKEN echo "len=${#TOKEN}" > /len && { test -e /run/secrets/tok && echo file || echo nofile; } >> /len\nRUN --mount=type=secret,id=tok,env=T2,target=/t { [ -n "$T2" ] && [ "$T2" = "$(cat /t)" ] && echo same || echo differ; } > /sum\nRUN echo "after=${TOKEN:-unset}" >> /len\n',
  });
  const value = 's3cr3t-value';
  const { image } = await build(t, dir, { secrets: { tok: value } });
  t.is(await run(t, image.digest, ['cat', '/len']), `len=${value.length}\nnofile\nafter=unset\n`);
  t.is(await run(t, image.digest, ['cat', '/sum']), 'same\n', 'the variable and the file hold the secret');
  const cfg = JSON.stringify(image.config);
  t.false(cfg.includes(value), 'not in the config or history');
  for (const l of image.layers.slice(1)) {
    const r = spawnSync('tar', ['-xOf', join(t.context.root, 'blobs', 'sha256', l.digest.slice(7))], { encoding: 'latin1' });
    t.false(r.stdout.includes(value), 'not in a layer');
  }
  await t.throwsAsync(build(t, context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=x,env=1BAD true\n' })), { message: /env=1BAD: not a variable name/ });
});
