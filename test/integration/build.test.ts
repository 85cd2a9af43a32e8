/**
 * The builder against the real kernel: Dockerfiles built on the busybox fixture image (imported
 * into a temp store), each result run and inspected (config, history, the layer tars' entries);
 * the build cache; failures leave no container, mount, temp file or image; the CLI's docker-style
 * output.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { BuildProgress } from '../../lib/build/index.js';
import { Image } from '../../lib/image/image.js';
import { Store } from '../../lib/storage/index.js';
import { mountTable, skipIf } from './_helpers.js';
import { apiUnavailable, bin, cleanup, docker, startServe } from './api-fixture.js';
import { build, buildSuite, cachedCount as cached, context, layerEntries, runImage as run } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-');

rtest('every metadata instruction, RUN (shell, exec, heredoc), COPY: the image runs; its config and history are docker\'s', async (t) => {
  const dir = context(t, {
    'a.txt': 'hello\n',
    Dockerfile: [
      '# syntax=docker/dockerfile:1',
      'ARG BASE=busybox',
      'FROM ${BASE}',
      'MAINTAINER someone',
      'ARG GREETING=hi',
      'ENV A=1 B="two words" \\',
      '    # a comment inside the continuation',
      '    C=${GREETING:-none}',
      'LABEL org.example.a=$A "with space"="x y"',
      'WORKDIR /app',
      'COPY a.txt ./',
      'RUN echo "A=$A B=$B C=$C G=$GREETING" > /out.txt',
      'RUN ["/bin/sh", "-c", "echo exec >> /out.txt"]',
      'RUN <<EOF',
      'echo heredoc >> /out.txt',
      'echo in $(pwd)',
      'EOF',
      'COPY <<EOT /etc/greeting',
      'hello $A "quoted"',
      'EOT',
      'EXPOSE 80 53/udp',
      'VOLUME /data',
      'STOPSIGNAL SIGINT',
      'HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost || exit 1',
      'SHELL ["/bin/sh", "-ec"]',
      'USER 1000:1000',
      'ONBUILD RUN echo child',
      'ENTRYPOINT ["/bin/sh", "-c"]',
      'CMD ["cat /out.txt /etc/greeting /app/a.txt; id -u"]',
    ].join('\n'),
  });
  const { image, out, events } = await build(t, dir, { tags: ['meta:1'], labels: { extra: 'yes' } });
  t.true(out.includes('in /app'), out);
  t.true(events.some((e) => e.type === 'warning' && /syntax directive/.test(e.message)));
  const r = await run(t, 'meta:1');
  t.is(r.stdout, 'A=1 B=two words C=hi G=hi\nexec\nheredoc\nhello 1 "quoted"\nhello\n1000\n');
  const c = image.config.config!;
  t.deepEqual(c.Env?.filter((e) => !e.startsWith('PATH=')), ['A=1', 'B=two words', 'C=hi']);
  t.deepEqual(c.Labels, { 'org.example.a': '1', 'with space': 'x y', extra: 'yes' });
  t.is(c.WorkingDir, '/app');
  t.deepEqual(Object.keys(c.ExposedPorts ?? {}).sort(), ['53/udp', '80/tcp']);
  t.deepEqual(Object.keys(c.Volumes ?? {}), ['/data']);
  t.is(c.StopSignal, 'SIGINT');
  t.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost || exit 1'], Interval: 5e9, Retries: 2 });
  t.deepEqual(c.Shell, ['/bin/sh', '-ec']);
  t.is(c.User, '1000:1000');
  t.deepEqual(c.OnBuild, ['RUN echo child']);
  t.deepEqual(c.Entrypoint, ['/bin/sh', '-c']);
  t.deepEqual(c.Cmd, ['cat /out.txt /etc/greeting /app/a.txt; id -u']);
  t.is(image.config.author, 'someone');
  // docker's inspect shows it as Author
  const inspected = spawnSync(process.execPath, [bin, 'inspect', 'meta:1'], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.root } });
  t.is(inspected.status, 0, inspected.stderr);
  t.is((JSON.parse(inspected.stdout) as Array<{ Author: string }>)[0]!.Author, 'someone');
  const hist = image.history().slice(-24);
  t.true(hist.some((h) => h.created_by === 'RUN |1 GREETING=hi /bin/sh -c echo "A=$A B=$B C=$C G=$GREETING" > /out.txt # buildkit' && !h.empty_layer), JSON.stringify(hist));
  t.true(hist.some((h) => h.created_by === 'ENV A=1 B=two words C=hi' && h.empty_layer === true));
  t.true(hist.some((h) => h.created_by === 'COPY a.txt ./ # buildkit' && !h.empty_layer));
  // one layer for busybox, then WORKDIR (made), COPY, 3 RUNs, COPY heredoc
  t.is(image.layers.length, 7);
  t.is(image.config.rootfs.diff_ids.length, image.config.history!.filter((h) => !h.empty_layer).length);

  // ONBUILD runs in a child, and is not inherited further
  const child = context(t, { Dockerfile: 'FROM meta:1\nCMD ["echo child ran"]\n' });
  const built = await build(t, child, { tags: ['child:1'] });
  t.is(built.out, 'child\n');
  t.falsy(built.image.config.config?.OnBuild);
  t.deepEqual(built.image.config.config?.Cmd, ['echo child ran']);
  t.deepEqual(built.image.config.config?.Entrypoint, ['/bin/sh', '-c'], 'ENTRYPOINT inherited; CMD set here');
});

rtest('layers: a deleted file is gone with a whiteout in its layer, a replaced directory is opaque, --chown/--chmod owners and modes, links kept', async (t) => {
  const dir = context(t, { 'f.txt': 'f\n', 'd/one': '1\n', 'd/two': '2\n' });
  symlinkSync('one', join(dir, 'd', 'link'));
  writeFileSync(join(dir, 'Dockerfile'), [
    'FROM busybox',
    'RUN mkdir -p /opq && touch /opq/old',
    'RUN rm /bin/vi && rm -r /opq && mkdir /opq && touch /opq/new && ln /etc/passwd /etc/passwd.hard',
    'COPY --chown=12:34 --chmod=640 f.txt /dst/',
    'COPY --chown=5:6 d /dir',
  ].join('\n'));
  const { image } = await build(t, dir, { tags: ['layers:1'] });
  const [, , del, copy, copyDir] = image.layers;
  const delEntries = layerEntries(t, del!.digest);
  t.true(delEntries.some((e) => e.endsWith(' bin/.wh.vi')), delEntries.join('\n'));
  t.true(delEntries.some((e) => e.endsWith(' opq/.wh..wh..opq')), delEntries.join('\n'));
  t.true(delEntries.some((e) => / etc\/passwd\.hard link to etc\/passwd$|etc\/passwd link to etc\/passwd\.hard$/.test(e)), delEntries.join('\n'));
  t.true(layerEntries(t, copy!.digest).includes('-rw-r----- 12/34 dst/f.txt'), layerEntries(t, copy!.digest).join('\n'));
  const dirEntries = layerEntries(t, copyDir!.digest);
  t.true(dirEntries.includes('lrwxrwxrwx 5/6 dir/link -> one'), dirEntries.join('\n'));
  t.true(dirEntries.includes('-rw-r--r-- 5/6 dir/one'), dirEntries.join('\n'));
  const r = await run(t, 'layers:1', ['sh', '-c', 'ls /bin/vi 2>&1; ls /opq; stat -c "%u:%g %a" /dst/f.txt /dir/one; cat /dir/link']);
  t.is(r.stdout, 'ls: /bin/vi: No such file or directory\nnew\n12:34 640\n5:6 644\n1\n');
});

rtest('ADD of a local tar unpacks it (gzipped too), keeping its owners; ADD of a plain file copies it; a glob with a file destination is refused', async (t) => {
  const dir = context(t, { 'plain.txt': 'p\n', 'src/a.js': 'a\n', 'src/b.js': 'b\n', 'src/c.txt': 'c\n' });
  const mk = spawnSync('sh', ['-c', `cd ${dir} && mkdir -p t/sub && echo in-tar > t/sub/f && tar --owner=3 --group=4 -C t -cf files.tar . && tar --owner=3 --group=4 -C t -czf files.tgz sub`]);
  t.is(mk.status, 0, String(mk.stderr));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nADD files.tar /x/\nADD files.tgz /y\nADD plain.txt /p.txt\nCOPY src/*.js /js/\n');
  const { image } = await build(t, dir);
  const r = await run(t, image.digest, ['sh', '-c', 'cat /x/sub/f /y/sub/f /p.txt; stat -c %u:%g /x/sub/f; ls /js']);
  t.is(r.stdout, 'in-tar\nin-tar\np\n3:4\na.js\nb.js\n');
  writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY src/*.js /one.js\n');
  await t.throwsAsync(build(t, dir), { message: /destination must be a directory and end with a \// });
});

rtest('multi-stage: --target, COPY --from a stage by name and index, FROM a stage, unneeded stages not built', async (t) => {
  const dir = context(t, {
    Dockerfile: [
      'FROM busybox AS unused',
      'RUN echo unused-ran && exit 3',
      'FROM busybox AS build',
      'RUN mkdir /out && echo built > /out/artifact && chown 7:8 /out/artifact',
      'FROM build AS test',
      'RUN echo tested > /out/tested',
      'FROM scratch',
      'COPY --from=build /out/artifact /artifact',
      'COPY --from=1 /bin/busybox /bin/busybox',
      'CMD ["/bin/busybox", "cat", "/artifact"]',
    ].join('\n'),
  });
  const { image, out } = await build(t, dir, { tags: ['multi:1'] });
  t.false(out.includes('unused-ran'));
  t.is(image.layers.length, 2);
  t.is((await run(t, 'multi:1')).stdout, 'built\n');
  t.is((await run(t, 'multi:1', ['/bin/busybox', 'stat', '-c', '%u:%g', '/artifact'])).stdout, '7:8\n', 'a stage keeps its owners');
  const target = await build(t, dir, { tags: ['multi:test'], target: 'test' });
  t.is((await run(t, 'multi:test', ['cat', '/out/tested', '/out/artifact'])).stdout, 'tested\nbuilt\n');
  t.false(target.out.includes('unused-ran'));
});

rtest('cache: all cached the second time; a content change misses from that COPY on, an mtime-only touch does not; a build arg misses from the first RUN after it; --no-cache', async (t) => {
  const dir = context(t, {
    'a.txt': 'a\n',
    'b.txt': 'b\n',
    Dockerfile: ['FROM busybox', 'RUN echo one > /one', 'COPY a.txt /a.txt', 'ARG V=1', 'COPY b.txt /b.txt', 'RUN echo v=$V > /v', 'RUN echo last'].join('\n'),
  });
  const first = await build(t, dir);
  t.is(cached(first.events), 0);
  const second = await build(t, dir);
  t.is(cached(second.events), 6, 'every step, ARG too');
  t.is(second.image.id, first.image.id, 'the same image');
  utimesSync(join(dir, 'a.txt'), new Date(2001, 1, 1), new Date(2001, 1, 1));
  t.is(cached((await build(t, dir)).events), 6, 'a touch changes nothing');
  writeFileSync(join(dir, 'b.txt'), 'changed\n');
  const changed = await build(t, dir);
  t.is(cached(changed.events), 3, 'RUN, COPY a.txt and ARG hit, COPY b.txt and below miss');
  const arg = await build(t, dir, { buildArgs: { V: '2' } });
  t.is(cached(arg.events), 4, 'the first RUN after ARG V misses');
  t.is((await run(t, arg.image.digest, ['cat', '/v'])).stdout, 'v=2\n');
  t.is(cached((await build(t, dir, { noCache: true })).events), 0);
});

rtest('cache keys: a hit starts no container; unchanged sources are known by their stat, a same-size same-mtime rewrite by its ctime, and it misses exactly from its COPY; a layer taken from its upper dir reads back', async (t) => {
  const dir = context(t, {
    'a.txt': 'aaaa\n',
    'b.txt': 'bbbb\n',
    Dockerfile: ['FROM busybox', 'COPY a.txt /a', 'RUN cat /a > /ra', 'COPY b.txt /b', 'RUN cat /b > /rb'].join('\n'),
  });
  const old = new Date(2001, 1, 1);
  for (const f of ['a.txt', 'b.txt']) utimesSync(join(dir, f), old, old);
  // past the window in which a file just changed is not remembered by its stat
  await new Promise((r) => setTimeout(r, 2100));
  const started = (events: BuildProgress[]) => events.filter((e) => e.type === 'running').length;
  const first = await build(t, dir);
  t.is(started(first.events), 2);
  const remembered = join(t.context.root, 'build-cache', 'file-digests');
  t.true(readdirSync(remembered).some((f) => readFileSync(join(remembered, f), 'utf8').includes('"b.txt"')), 'the sources\' digests are remembered');
  const warm = await build(t, dir);
  t.is(cached(warm.events), 4);
  t.is(started(warm.events), 0, 'no RUN container for a hit');
  t.is(warm.image.id, first.image.id);
  writeFileSync(join(dir, 'b.txt'), 'BBBB\n');
  utimesSync(join(dir, 'b.txt'), old, old);
  const changed = await build(t, dir);
  t.is(cached(changed.events), 2, 'COPY a.txt and its RUN hit; COPY b.txt and its RUN miss');
  t.is(started(changed.events), 1);
  t.is((await run(t, changed.image.digest, ['cat', '/a', '/ra', '/b', '/rb'])).stdout, 'aaaa\naaaa\nBBBB\nBBBB\n');
  const top = changed.image.layers.at(-1)!;
  t.deepEqual(layerEntries(t, top.digest), ['-rw-r--r-- 0/0 rb']);
  t.is(statSync(new Store({ root: t.context.root }).layers.dir(top.chainId)).mode & 0o7777, 0o755, 'a layer tree as an unpacked one');
});

rtest('SOURCE_DATE_EPOCH: two builds without the cache give the same image; its times are that epoch', async (t) => {
  const dir = context(t, { 'a.txt': 'a\n', Dockerfile: 'FROM busybox\nCOPY a.txt /\nRUN echo x > /x && touch /a.txt\nENV A=1\n' });
  const opts = { noCache: true, buildArgs: { SOURCE_DATE_EPOCH: '1700000000' } };
  const one = await build(t, dir, opts);
  const two = await build(t, dir, opts);
  t.is(one.image.digest, two.image.digest);
  t.is(one.image.config.created, '2023-11-14T22:13:20.000Z');
  t.is(one.image.history().at(-1)!.created, '2023-11-14T22:13:20.000Z');
  t.true(layerEntries(t, one.image.layers.at(-1)!.digest).length > 0);
  const plain = await build(t, dir, { noCache: true });
  t.not(plain.image.digest, one.image.digest);
});

rtest('failures: a failing RUN, a missing COPY source, a bad instruction, ADD of a tar with ..: clear errors and nothing left behind; a symlink out of the context is copied as a link', async (t) => {
  const before = { images: (await Image.list({ root: t.context.root })).length, mounts: mountTable() };
  const tmp = join(t.context.root, 'tmp');
  const failing = context(t, { Dockerfile: 'FROM busybox\nRUN echo partial > /x && exit 7\n' });
  await t.throwsAsync(build(t, failing, { tags: ['bad:1'] }), { message: "The command '/bin/sh -c echo partial > /x && exit 7' returned a non-zero code: 7" });
  await t.throwsAsync(build(t, context(t, { Dockerfile: 'FROM busybox\nCOPY nope.txt /\n' })), { message: /"\/nope.txt" not found/ });
  await t.throwsAsync(build(t, context(t, { Dockerfile: 'FROM busybox\nFROBNICATE x\n' })), { message: /Dockerfile:2: FROBNICATE is not a Dockerfile instruction/ });
  await t.throwsAsync(build(t, context(t, { Dockerfile: 'FROM busybox\nRUN <<EOF\necho\n' })), { message: /unterminated heredoc/ });
  const evil = context(t, { Dockerfile: 'FROM busybox\nADD evil.tar /x/\n' });
  const mk = spawnSync('sh', ['-c', `cd ${evil} && mkdir -p a && echo pwned > a/f && tar -cf evil.tar --transform='s,^a/f,../../escaped,' a/f`]);
  t.is(mk.status, 0, String(mk.stderr));
  await t.throwsAsync(build(t, evil), { message: /\.\.|outside/ });
  t.false(existsSync(join(t.context.root, 'escaped')));
  t.is((await Image.list({ root: t.context.root })).length, before.images, 'no image');
  t.is(mountTable(), before.mounts, 'no mount');
  t.deepEqual(readdirSync(tmp).filter((f) => !f.startsWith('.')), [], 'no temp file');
  const runs = join(process.env.NSBOX_RUN_ROOT ?? '/run/nsbox', 'build');
  t.deepEqual(existsSync(runs) ? readdirSync(runs) : [], [], 'no container directory');

  const linked = context(t, { Dockerfile: 'FROM busybox\nCOPY . /ctx/\n' });
  symlinkSync('/etc/shadow', join(linked, 'shadow-link'));
  symlinkSync('../../../../etc/hostname', join(linked, 'up-link'));
  const { image } = await build(t, linked);
  const r = await run(t, image.digest, ['sh', '-c', 'readlink /ctx/shadow-link; readlink /ctx/up-link']);
  t.is(r.stdout, '/etc/shadow\n../../../../etc/hostname\n');
});

rtest('nsbox build: docker\'s legacy output, -q, --iidfile, a context tar on stdin, .dockerignore', (t) => {
  const dir = context(t, { 'keep.txt': 'k\n', 'skip.log': 's\n', '.dockerignore': '*.log\n', Dockerfile: 'FROM busybox\nCOPY . /c/\nRUN ls /c\nCMD ["true"]\n' });
  const env = { ...process.env, NSBOX_ROOT: t.context.root };
  const r = spawnSync(process.execPath, [bin, 'build', '-t', 'cli:1', dir], { encoding: 'utf8', env, timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^Step 1\/4 : FROM busybox\n ---> [0-9a-f]{12}\nStep 2\/4 : COPY \. \/c\/\n ---> [0-9a-f]{12}\nStep 3\/4 : RUN ls \/c\n ---> Running in [0-9a-f]{12}\n/);
  t.true(r.stdout.includes('Dockerfile\nkeep.txt\n'), r.stdout);
  t.false(r.stdout.includes('skip.log'));
  t.regex(r.stdout, /Successfully built [0-9a-f]{12}\nSuccessfully tagged cli:1\n$/);
  const ids = [...r.stdout.matchAll(/ ---> ([0-9a-f]{12})\n/g)].map((m) => m[1]);
  t.is(ids.at(-1), /Successfully built ([0-9a-f]{12})/.exec(r.stdout)?.[1], 'the last step\'s id is the image\'s');
  const again = spawnSync(process.execPath, [bin, 'build', '-t', 'cli:1', dir], { encoding: 'utf8', env, timeout: 120_000 });
  t.regex(again.stdout, /Step 3\/4 : RUN ls \/c\n ---> Using cache\n/);
  const iid = join(t.context.dir, 'iid');
  const q = spawnSync('sh', ['-c', `tar -C ${dir} -c . | ${process.execPath} ${bin} build -q --iidfile ${iid} -`], { encoding: 'utf8', env, timeout: 120_000 });
  t.is(q.status, 0, q.stderr);
  t.regex(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
  t.is(readFileSync(iid, 'utf8'), q.stdout.trim());
  const bad = spawnSync(process.execPath, [bin, 'build', context(t, { Dockerfile: 'FROM busybox\nRUN exit 2\n' })], { encoding: 'utf8', env, timeout: 120_000 });
  t.is(bad.status, 125);
  t.regex(bad.stderr, /The command '\/bin\/sh -c exit 2' returned a non-zero code: 2/);
});

const dockerTest = skipIf(apiUnavailable({ docker: true }), rtest);

dockerTest('the docker CLI through nsbox serve: docker build -t app . (the legacy builder path), then docker run --rm app', async (t) => {
  const serve = await startServe({ root: t.context.root });
  t.teardown(() => cleanup(serve));
  const dir = context(t, { 'hello.txt': 'hello from the context\n', Dockerfile: 'FROM busybox\nMAINTAINER Ann Example <ann@example.com>\nARG WHO=nobody\nCOPY hello.txt /\nRUN echo "built by $WHO" > /by\nCMD ["sh", "-c", "cat /hello.txt /by"]\n' });
  const b = docker(serve, ['build', '-t', 'app', '--build-arg', 'WHO=docker', dir], { timeout: 120_000 });
  t.is(b.status, 0, b.stderr);
  t.regex(b.stdout, /Step 5\/6 : RUN echo "built by \$WHO" > \/by\n ---> Running in [0-9a-f]{12}\n/);
  const author = docker(serve, ['image', 'inspect', '--format', '{{.Author}}', 'app']);
  t.is(author.stdout, 'Ann Example <ann@example.com>\n', 'MAINTAINER is the image\'s Author');
  t.regex(b.stdout, /Successfully built [0-9a-f]{12}\nSuccessfully tagged app:latest\n/);
  const r = docker(serve, ['run', '--rm', 'app']);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'hello from the context\nbuilt by docker\n');
  const again = docker(serve, ['build', '-q', '-t', 'app', '--build-arg', 'WHO=docker', dir], { timeout: 120_000 });
  t.is(again.status, 0, again.stderr);
  t.regex(again.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const bad = docker(serve, ['build', context(t, { Dockerfile: 'FROM busybox\nRUN exit 3\n' })], { timeout: 120_000 });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /The command '\/bin\/sh -c exit 3' returned a non-zero code: 3/);
});

dockerTest('dockerode buildImage: a context tar stream with t and buildargs; the JSON lines end with the aux id', async (t) => {
  const serve = await startServe({ root: t.context.root });
  t.teardown(() => cleanup(serve));
  const client = new Docker({ socketPath: serve.socket });
  const dir = context(t, { Dockerfile: 'FROM busybox\nARG X\nRUN echo x=$X > /x\nCMD ["cat", "/x"]\n' });
  const tar = spawnSync('tar', ['-C', dir, '-c', '.'], { maxBuffer: 1 << 26 }).stdout;
  const stream = await client.buildImage(Readable.from([tar]), { t: 'dockerode-app:1', buildargs: { X: '42' } });
  const lines = await new Promise<Array<Record<string, unknown>>>((resolve, reject) => client.modem.followProgress(stream, (err: Error | null, out: Array<Record<string, unknown>>) => (err ? reject(err) : resolve(out))));
  t.true(lines.some((l) => typeof l['stream'] === 'string' && (l['stream'] as string).startsWith('Step 3/4 : RUN echo x=$X > /x')), JSON.stringify(lines));
  const aux = lines.find((l) => l['aux'] !== undefined)?.['aux'] as { ID: string } | undefined;
  t.regex(aux?.ID ?? '', /^sha256:[0-9a-f]{64}$/);
  const c = await client.createContainer({ Image: 'dockerode-app:1' });
  await c.start();
  await c.wait();
  const logs = (await c.logs({ stdout: true })) as unknown as Buffer;
  t.true(logs.toString('latin1').includes('x=42'));
  await c.remove();
});
