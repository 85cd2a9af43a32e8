/**
 * ADD of git repositories, from a bare repository this test makes and serves on 127.0.0.1 twice:
 * by `git daemon` (git://, shallow fetches) and over git's dumb HTTP protocol from a static file
 * server in the test (an http URL ending .git; no shallow fetch there, so the whole history).
 * `#tag:subdir` copies that directory at the tag, without .git; `--keep-git-dir=true` keeps it; the
 * same commit again is a cache hit, a new commit on the branch a miss; `--checksum` must match the
 * commit; a missing ref, a subdir that is a symlink out of the checkout, and COPY of a git URL are
 * refused.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createReadStream, mkdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { build, buildSuite, cachedCount, context, run } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-git-');

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`git daemon: nothing listens on ${port}`);
}

rtest('ADD of a git repository: git:// and dumb http, #ref:subdir, --keep-git-dir, cache by commit, refusals', async (t) => {
  const work = join(t.context.dir, 'work');
  const served = join(t.context.dir, 'served');
  mkdirSync(work);
  mkdirSync(served);
  git(work, 'init', '-q');
  mkdirSync(join(work, 'sub'));
  spawnSync('sh', ['-c', 'echo v1 > top.txt && echo a1 > sub/a.txt && printf "#!/bin/sh\\necho run\\n" > sub/run.sh && chmod 755 sub/run.sh && ln -s /etc escape'], { cwd: work });
  git(work, 'add', '.');
  git(work, 'commit', '-qm', 'one');
  git(work, 'tag', 'v1');
  spawnSync('sh', ['-c', 'echo v2 > top.txt && echo a2 > sub/a.txt'], { cwd: work });
  git(work, 'commit', '-qam', 'two');
  git(t.context.dir, 'clone', '-q', '--bare', work, join(served, 'repo.git'));
  const bare = join(served, 'repo.git');
  git(bare, 'update-server-info');

  const port = 20000 + Math.floor(Math.random() * 20000);
  let daemon: ChildProcess | undefined;
  let server: Server | undefined;
  try {
    daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${served}`, '--listen=127.0.0.1', `--port=${port}`, served], { stdio: 'ignore' });
    await listening(port);
    server = createServer((req, res) => {
      const file = join(served, normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
      if (!file.startsWith(served) || !statSync(file, { throwIfNoEntry: false })?.isFile()) return void res.writeHead(404).end();
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const http = `http://127.0.0.1:${(server.address() as AddressInfo).port}/repo.git`;
    const tag1 = git(bare, 'rev-parse', 'v1^{commit}');

    // git://, a tag and a subdirectory: its contents, modes kept, no .git
    const dir = context(t, { Dockerfile: `FROM busybox\nADD git://127.0.0.1:${port}/repo.git#v1:sub /dst\nADD --keep-git-dir=true ${http} /repo\n` });
    const first = await build(t, dir);
    t.is(cachedCount(first.events), 0);
    t.is(await run(t, first.image.digest, ['sh', '-c', 'ls -a /dst; cat /dst/a.txt; /dst/run.sh; stat -c %a:%u /dst/run.sh /dst/a.txt']), '.\n..\na.txt\nrun.sh\na1\nrun\n755:0\n644:0\n');
    // dumb http, the default branch, .git kept (at the commit it checked out)
    t.is(await run(t, first.image.digest, ['sh', '-c', 'cat /repo/top.txt; test -d /repo/.git && echo has-git; readlink /repo/escape']), 'v2\nhas-git\n/etc\n');
    t.is(first.image.config.history?.at(-2)?.created_by, `ADD git://127.0.0.1:${port}/repo.git#v1:sub /dst # buildkit`);

    // the same commits: both ADDs hit (the kept .git's changing bytes are not the key)
    const again = await build(t, dir);
    t.is(cachedCount(again.events), 2);
    t.is(again.image.id, first.image.id);
    // a new commit on the branch: the http ADD misses, the tag's still hits
    spawnSync('sh', ['-c', 'echo v3 > top.txt'], { cwd: work });
    git(work, 'commit', '-qam', 'three');
    git(work, 'push', '-q', bare, 'main');
    git(bare, 'update-server-info');
    const moved = await build(t, dir);
    t.is(cachedCount(moved.events), 1);
    t.is(await run(t, moved.image.digest, ['cat', '/repo/top.txt']), 'v3\n');

    // --checksum names the commit
    const sum = await build(t, context(t, { Dockerfile: `FROM busybox\nADD --checksum=${tag1.slice(0, 12)} git://127.0.0.1:${port}/repo.git#v1 /v\n` }));
    t.is(await run(t, sum.image.digest, ['cat', '/v/top.txt']), 'v1\n');
    await t.throwsAsync(build(t, context(t, { Dockerfile: `FROM busybox\nADD --checksum=0000000 git://127.0.0.1:${port}/repo.git#v1 /v\n` })), { message: new RegExp(`expected checksum to match 0000000, got ${tag1}`) });
    await t.throwsAsync(build(t, context(t, { Dockerfile: `FROM busybox\nADD git://127.0.0.1:${port}/repo.git#nope /v\n` })), { message: /failed to fetch git:\/\/127\.0\.0\.1:\d+\/repo\.git#nope/ });
    await t.throwsAsync(build(t, context(t, { Dockerfile: `FROM busybox\nADD ${http}#v1:escape /v\n` })), { message: /escape is not a directory of/ });
    await t.throwsAsync(build(t, context(t, { Dockerfile: `FROM busybox\nCOPY ${http} /v\n` })), { message: /source can't be a git repository for COPY/ });
  } finally {
    daemon?.kill();
    server?.close();
  }
});
