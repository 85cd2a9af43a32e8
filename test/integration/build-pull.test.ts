/**
 * Base images from a registry: `--pull` fetches the base even when the store has that name (a
 * newer push is built on), without it the store's is used; `POST /build`'s X-Registry-Config
 * (what `docker build` sends from its config.json) carries the credentials for an htpasswd
 * registry, and a build without them fails with the registry's refusal.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Image } from '../../lib/image/image.js';
import { htpasswdUnavailable, makeHtpasswd, registryUnavailable, startRegistry } from '../fixtures/registry.js';
import { apiUnavailable, cleanup, docker, startServe } from './api-fixture.js';
import { skipIf } from './_helpers.js';
import { build, buildSuite, context, run } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-pull-');
const reason = registryUnavailable() ?? htpasswdUnavailable() ?? apiUnavailable({ docker: true });

skipIf(reason, rtest)('--pull builds on the registry\'s newer base; X-Registry-Config from docker build authenticates the base\'s pull', async (t) => {
  const authDir = mkdtempSync(join(tmpdir(), 'nsbox-build-pull-auth-'));
  const reg = await startRegistry({ htpasswd: makeHtpasswd(authDir, 'nsbox', 'nsbox-test') });
  const auth = { username: 'nsbox', password: 'nsbox-test' };
  const base = `${reg.host}/base:1`;
  let serve;
  try {
    const v1 = await build(t, context(t, { Dockerfile: 'FROM busybox\nRUN echo one > /v\n' }), { tags: [base] });
    await Image.push(base, { root: t.context.root, auth });
    const v2 = await build(t, context(t, { Dockerfile: 'FROM busybox\nRUN echo two > /v\n' }), { tags: [base] });
    await Image.push(base, { root: t.context.root, auth });
    // the store's name back on the first: the registry has the second
    await (await Image.get(v1.image.digest, { root: t.context.root })).tag(base);
    t.not(v1.image.id, v2.image.id);
    const dir = context(t, { Dockerfile: `FROM ${base}\nRUN cat /v\n` });
    t.is((await build(t, dir)).out, 'one\n', 'the store\'s base');
    await t.throwsAsync(build(t, dir, { pull: true }), { message: /401|unauthorized|authentication/i }, 'a pull without credentials is refused');
    const pulled = await build(t, dir, { pull: true, registryAuth: { [reg.host]: auth } });
    t.is(pulled.out, 'two\n', 'the registry\'s base');
    t.is(await run(t, pulled.image.digest, ['cat', '/v']), 'two\n');

    // docker build through nsbox serve on an empty store: the base is pulled with config.json's credentials
    serve = await startServe();
    const ctx = context(t, { Dockerfile: `FROM ${base}\nRUN cat /v\n` });
    const noAuth = docker(serve, ['build', '-t', 'app:1', ctx], { timeout: 120_000 });
    t.not(noAuth.status, 0);
    t.regex(noAuth.stdout + noAuth.stderr, /401|unauthorized|authentication/i);
    mkdirSync(join(serve.dir, 'docker-config'), { recursive: true });
    writeFileSync(join(serve.dir, 'docker-config', 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('nsbox:nsbox-test').toString('base64') } } }));
    const ok = docker(serve, ['build', '--pull', '-t', 'app:1', ctx], { timeout: 120_000 });
    t.is(ok.status, 0, ok.stderr);
    t.regex(ok.stdout, /^two$/m);
    const r = docker(serve, ['run', '--rm', 'app:1', 'cat', '/v']);
    t.is(r.stdout, 'two\n', r.stderr);
  } finally {
    await cleanup(serve);
    await reg.stop();
    rmSync(authDir, { recursive: true, force: true });
  }
});
