/**
 * RUN --mount=type=cache sharing across processes: two `nsbox build` processes whose RUNs use one
 * cache id with sharing=locked run one after the other (the second waits on the cache's flock
 * until the first RUN ends: it is seen holding the lock file open, and its RUN starts only after
 * the first one's end); while the first holds it, a build in this process gets a fresh, empty
 * directory with sharing=private and the held one itself with the default sharing=shared.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, buildSuite, context, run } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-cache-lock-');
const bin = fileURLToPath(new URL('../../bin/nsbox.js', import.meta.url));

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const holds = (pid: number, file: string) => {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        // the fd closed meanwhile
        return false;
      }
    });
  } catch {
    // the process has exited
    return false;
  }
};

rtest('RUN --mount=type=cache: sharing=locked serializes builds in two processes; private gets a fresh dir, shared the held one', async (t) => {
  const env = { ...process.env, NSBOX_ROOT: t.context.root };
  const cache = join(t.context.root, 'build-cache-mounts', createHash('sha256').update('\0shared-id').digest('hex'));
  const log = join(cache, 'log');
  // each RUN logs its start, waits for the test's go file in the cache, logs its end
  const locked = context(t, { Dockerfile: 'FROM busybox\nARG WHO\nRUN --mount=type=cache,id=shared-id,target=/c,sharing=locked echo start-$WHO >> /c/log; while [ ! -e /c/go ]; do sleep 0.05; done; echo end-$WHO >> /c/log\n' });
  const children: ChildProcess[] = [];
  const cli = (who: string) => {
    const c = spawn(process.execPath, [bin, 'build', '-q', '--no-cache', '--build-arg', `WHO=${who}`, locked], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(c);
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<{ code: number | null; err: string }>((resolve) => c.on('exit', (code) => resolve({ code, err })));
  };
  try {
    const a = cli('a');
    await until('the first RUN', () => existsSync(log) && readFileSync(log, 'utf8').includes('start-a'));
    const b = cli('b');
    await until('the second build to wait on the lock', () => holds(children[1]!.pid!, `${cache}.lock`));

    // meanwhile, in this process: private is a fresh empty directory, shared (the default) the held one
    const side = await build(t, context(t, { Dockerfile: 'FROM busybox\nRUN --mount=type=cache,id=shared-id,target=/c,sharing=private ls -A /c > /private; touch /c/private-was-here\nRUN --mount=type=cache,id=shared-id,target=/c cat /c/log > /shared\n' }));
    t.is(await run(t, side.image.digest, ['cat', '/private', '/shared']), 'start-a\n');
    t.false(existsSync(join(cache, 'private-was-here')), 'the private copy is not the cache');
    t.is(readFileSync(log, 'utf8'), 'start-a\n', 'the second locked RUN has not started');

    writeFileSync(join(cache, 'go'), '');
    const [ra, rb] = await Promise.all([a, b]);
    t.is(ra.code, 0, ra.err);
    t.is(rb.code, 0, rb.err);
    t.is(readFileSync(log, 'utf8'), 'start-a\nend-a\nstart-b\nend-b\n');
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
});
