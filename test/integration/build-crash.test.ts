/**
 * A build that dies: `nsbox build` killed with SIGKILL mid-RUN leaves its run directory (the
 * RUN container's upper dir, a secret file) and the container's cgroups, until the next build
 * sweeps them; a damaged build-cache entry is a miss (the step runs again), not a failed build.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin } from './api-fixture.js';
import { build, buildSuite, cachedCount, context, run } from './build-fixture.js';
import { mountTable } from './_helpers.js';

const rtest = buildSuite('nsbox-build-crash-');

/** The cgroup directories named `id` in the host's hierarchies. */
function cgroupsOf(id: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const p = join('/sys/fs/cgroup', h, 'nsbox', id);
    if (existsSync(p)) out.push(p);
  }
  return out;
}

rtest('kill -9 of nsbox build mid-RUN: the next build removes its run directory, secret file, cgroups and temp files', async (t) => {
  const runRoot = join(t.context.dir, 'run');
  const dir = context(t, { 'big.txt': 'x'.repeat(1 << 16), s: 'hush\n', Dockerfile: 'FROM busybox\nCOPY big.txt /\nRUN --mount=type=secret,id=s echo started; exec sleep 600\n' });
  const child = spawn(process.execPath, [bin, 'build', '--secret', `id=s,src=${join(dir, 's')}`, dir], { env: { ...process.env, NSBOX_ROOT: t.context.root, NSBOX_RUN_ROOT: runRoot }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // the RUN's own output says it is running
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('started\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`nsbox build exited ${code} before its RUN started: ${out}`)));
  });
  const [token] = readdirSync(join(runRoot, 'build'));
  const runDir = join(runRoot, 'build', token!);
  const [id] = readdirSync(runDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
  t.truthy(id, `a container directory in ${runDir}`);
  t.true(cgroupsOf(id!).length > 0, 'the RUN container has cgroups');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('close', r));
  // what the kill left
  t.true(existsSync(join(runDir, id!, 'upper')));
  const secretDirs = readdirSync(runDir).filter((n) => n.startsWith('mounts-'));
  t.is(secretDirs.length, 1);
  t.is(readFileSync(join(runDir, secretDirs[0]!, 'secret-1'), 'utf8'), 'hush\n');
  t.true(cgroupsOf(id!).length > 0);
  const before = mountTable();

  // the next build, under the same run root
  process.env.NSBOX_RUN_ROOT = runRoot;
  let next;
  try {
    next = await build(t, context(t, { Dockerfile: 'FROM busybox\nRUN echo next\n' }), {});
  } finally {
    delete process.env.NSBOX_RUN_ROOT;
  }
  t.is(next.out, 'next\n');
  t.false(existsSync(runDir), 'the killed build\'s run directory is gone');
  t.deepEqual(cgroupsOf(id!), [], 'its cgroups are gone');
  t.deepEqual(readdirSync(join(t.context.root, 'tmp')).filter((n) => n.startsWith('build-')), [], 'no build temp files in the store');
  t.is(mountTable(), before);
});

rtest('a damaged build-cache entry is a miss: the step runs again and its entry is rewritten', async (t) => {
  const dir = context(t, { Dockerfile: 'FROM busybox\nRUN echo once > /f\nRUN cat /f\n' });
  const one = await build(t, dir);
  t.is(one.out, 'once\n');
  const cacheDir = join(t.context.root, 'build-cache');
  // damage every entry of this build (torn writes)
  const entries = readdirSync(cacheDir).filter((n) => n.endsWith('.json'));
  t.true(entries.length >= 2);
  for (const e of entries) writeFileSync(join(cacheDir, e), '{"layer": {"dig');
  const two = await build(t, dir);
  t.is(cachedCount(two.events), 0);
  t.is(two.out, 'once\n', 'both RUNs ran again');
  t.is(await run(t, two.image.digest, ['cat', '/f']), 'once\n');
  const three = await build(t, dir);
  t.is(cachedCount(three.events), 2, 'the rewritten entries hit');
});
