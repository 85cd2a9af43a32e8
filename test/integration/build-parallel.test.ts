/**
 * Independent stages run at once: two stages that each wait on a fifo the other writes (through a
 * shared cache mount) finish only if they run concurrently; the output is still given stage by
 * stage in file order. A failing stage cancels the others: the build fails with its error, and
 * the other stage's RUN container is killed and removed (no cgroup, mount, run or temp directory).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildProgress } from '../../lib/build/index.js';
import { build, buildSuite, context, run } from './build-fixture.js';
import { mountTable } from './_helpers.js';

const rtest = buildSuite('nsbox-build-parallel-');

/** The cgroup directories named `id` in the host's hierarchies. */
function cgroupsOf(id: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const p = join('/sys/fs/cgroup', h, 'nsbox', id);
    if (existsSync(p)) out.push(p);
  }
  return out;
}

// `timeout` bounds a build in sequence (which would wait forever) so that it fails instead of hanging
const cacheMount = (id: string) => `--mount=type=cache,target=/c,id=${id},sharing=shared`;

rtest('two stages that wait on each other both finish: they run at once; the output is in file order', async (t) => {
  const dir = context(t, {
    Dockerfile: [
      'FROM busybox AS a',
      `RUN ${cacheMount('rendezvous')} timeout 60 sh -c 'mkfifo /c/ab /c/ba 2>/dev/null; echo from-a > /c/ab; cat /c/ba > /a.txt'; echo a-done`,
      'FROM busybox AS b',
      `RUN ${cacheMount('rendezvous')} timeout 60 sh -c 'mkfifo /c/ab /c/ba 2>/dev/null; cat /c/ab > /b.txt; echo from-b > /c/ba'; echo b-done`,
      'FROM busybox',
      'COPY --from=a /a.txt /a.txt',
      'COPY --from=b /b.txt /b.txt',
    ].join('\n'),
  });
  const { events, out } = await build(t, dir, { tags: ['par:1'], noCache: true });
  t.is(out, 'a-done\nb-done\n', 'stage a\'s output, then stage b\'s');
  t.is(await run(t, 'par:1', ['cat', '/a.txt', '/b.txt']), 'from-b\nfrom-a\n');
  const steps = events.filter((e): e is Extract<BuildProgress, { type: 'step' }> => e.type === 'step').map((e) => `${e.step}/${e.total} ${e.instruction.split(' ')[0]}`);
  t.deepEqual(steps, ['1/7 FROM', '2/7 RUN', '3/7 FROM', '4/7 RUN', '5/7 FROM', '6/7 COPY', '7/7 COPY']);
});

rtest('a failing stage cancels the other: the build fails with its error, the other RUN is killed and removed', async (t) => {
  const runRoot = join(t.context.dir, 'run-cancel');
  const before = mountTable();
  const dir = context(t, {
    Dockerfile: [
      'FROM busybox AS waits',
      // it waits for a writer that never comes: only the cancel ends it
      `RUN ${cacheMount('never')} mkfifo /c/never 2>/dev/null; echo waiting; cat /c/never`,
      'FROM busybox AS fails',
      `RUN ${cacheMount('never')} until [ -p /c/never ]; do sleep 0.05; done; echo failing; exit 7`,
      'FROM busybox',
      'COPY --from=waits /etc/hostname /1',
      'COPY --from=fails /etc/hostname /2',
    ].join('\n'),
  });
  const events: BuildProgress[] = [];
  const { buildImage } = await import('../../lib/build/index.js');
  process.env.NSBOX_RUN_ROOT = runRoot;
  try {
    await t.throwsAsync(buildImage({ context: dir, root: t.context.root, noCache: true, onProgress: (e) => events.push(e) }), {
      message: "The command '/bin/sh -c until [ -p /c/never ]; do sleep 0.05; done; echo failing; exit 7' returned a non-zero code: 7",
    });
  } finally {
    delete process.env.NSBOX_RUN_ROOT;
  }
  const ran = events.filter((e): e is Extract<BuildProgress, { type: 'running' }> => e.type === 'running').map((e) => e.container);
  t.is(ran.length, 2, 'both RUNs started');
  const out = events.filter((e) => e.type === 'output').map((e) => (e as { data: Buffer }).data.toString()).join('');
  t.is(out, 'waiting\nfailing\n');
  for (const id of ran) t.deepEqual(cgroupsOf(id), [], `no cgroup of ${id.slice(0, 12)}`);
  t.deepEqual(readdirSync(join(runRoot, 'build')), [], 'no run directory');
  t.deepEqual(readdirSync(join(t.context.root, 'tmp')).filter((n) => n.startsWith('build-')), [], 'no build temp files');
  t.is(mountTable(), before, 'no mount');
});
