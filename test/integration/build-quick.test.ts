/**
 * The quick `nsbox build` (lib/cli/quick/build.ts, its own bundle): a fully cached build from the
 * plan the full build kept (lib/build/build-plan.ts) gives what the full build gives (output, image
 * id, image record, tags and journal, provenance but its times), and falls back when anything the
 * build read has changed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSuite, context, type BuildCtx } from './build-fixture.js';

const rtest = buildSuite('nsbox-build-quick-');
const bin = fileURLToPath(new URL('../../bin/nsbox.js', import.meta.url));
const quickBuild = fileURLToPath(new URL('../../dist/cli-bundle/quick-build.cjs', import.meta.url));

const env = (t: { context: BuildCtx }) => ({ ...process.env, NSBOX_ROOT: t.context.root });
const cli = (t: { context: BuildCtx }, args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: env(t), timeout: 120_000 });
/** The quick bundle alone: exit 99 when it would fall back to the full command. */
const quick = (t: { context: BuildCtx }, args: string[]) =>
  spawnSync(process.execPath, ['-e', `require(${JSON.stringify(quickBuild)}).run(${JSON.stringify(args)}).then((c) => process.exit(c ?? 99))`], { encoding: 'utf8', env: env(t) });

interface Db {
  refs: Record<string, string>;
  images: Record<string, { index: string; addedAt: string; extraBlobs: string[] } & Record<string, unknown>>;
  journal: Record<string, Array<{ digest: string; by: string }>>;
}
const db = (t: { context: BuildCtx }): Db => JSON.parse(readFileSync(join(t.context.root, 'images.json'), 'utf8')) as Db;
const blob = (t: { context: BuildCtx }, d: string) => JSON.parse(readFileSync(join(t.context.root, 'blobs', 'sha256', d.slice(7)), 'utf8')) as Record<string, any>;

/** The provenance statement kept with image `digest`, without its two times. */
function statement(t: { context: BuildCtx }, digest: string): Record<string, any> {
  const index = blob(t, db(t).images[digest]!.index);
  const att = blob(t, index.manifests[1].digest);
  const s = blob(t, att.layers[0].digest);
  delete s.predicate.metadata.buildStartedOn;
  delete s.predicate.metadata.buildFinishedOn;
  return s;
}

/** A context whose entries are older than the plan's racy window. */
async function oldContext(t: { context: BuildCtx }, files: Record<string, string>): Promise<string> {
  const dir = context(t, files);
  await new Promise((r) => setTimeout(r, 2100));
  return dir;
}

rtest('a cached build from the plan: the full build\'s output, image, record, tags and provenance', async (t) => {
  const dir = await oldContext(t, {
    'a.txt': 'a\n',
    'b.txt': 'b\n',
    Dockerfile: ['FROM busybox AS one', 'COPY a.txt /a', 'RUN cat /a > /one', 'FROM busybox', 'ARG V=1', 'COPY --from=one /one /one', 'COPY b.txt /b', 'RUN cat /one /b > /both', 'ENV X=$V', 'LABEL l=1'].join('\n'),
  });
  const args = ['build', '-t', 'quick:1', '-t', 'quick:2', '--build-arg', 'UNUSED=1', '--label', 'k=v', dir];
  const cold = cli(t, [args[0]!, '--no-cache', ...args.slice(1)]);
  t.is(cold.status, 0, cold.stderr);
  const names = ['docker.io/library/quick:1', 'docker.io/library/quick:2'];
  const afterCold = readFileSync(join(t.context.root, 'images.json'), 'utf8');
  const q = quick(t, args.slice(1));
  t.is(q.status, 0, `quick build fell back: ${q.stderr}`);
  t.is(readFileSync(join(t.context.root, 'images.json'), 'utf8'), afterCold, 'the image in place under its tags: nothing written');
  const id = /Successfully built (\w+)/.exec(q.stdout)![1]!;
  const digest = db(t).refs[names[0]!]!;
  // with the tags moved away, the quick build writes what the full build writes
  const away = () => names.forEach((n) => t.is(cli(t, ['tag', 'busybox', n]).status, 0));
  away();
  t.is(quick(t, args.slice(1)).status, 0);
  const afterQuick = db(t);
  const quickStatement = statement(t, digest);
  away();
  // the same request through the full build (no plan)
  rmSync(join(t.context.root, 'build-plans'), { recursive: true, force: true });
  const full = cli(t, args);
  t.is(full.status, 0, full.stderr);
  t.is(q.stdout, full.stdout);
  t.is(q.stderr, full.stderr);
  t.regex(q.stdout, /Step 3\/10 : RUN cat \/a > \/one\n ---> Using cache\n/);
  t.regex(q.stderr, /One or more build-args \[UNUSED\] were not consumed/);
  t.true(cold.stdout.includes(`Successfully built ${id}`));
  const afterFull = db(t);
  t.deepEqual(afterFull.refs, afterQuick.refs);
  const entry = (e: { digest: string; by: string } & Record<string, unknown>) => ({ ...e, at: undefined });
  for (const n of names) {
    t.deepEqual(afterFull.journal[n]!.slice(0, -2), afterQuick.journal[n], 'the full build added a line where the quick one did');
    t.deepEqual(afterFull.journal[n]!.slice(-2).map(entry), afterQuick.journal[n]!.slice(-2).map(entry));
  }
  const strip = (r: Db['images'][string]) => ({ ...r, addedAt: undefined, index: undefined, extraBlobs: undefined });
  t.deepEqual(strip(afterFull.images[digest]!), strip(afterQuick.images[digest]!));
  t.deepEqual(statement(t, digest), quickStatement);
  // the full build wrote the plan again; -q and --iidfile from it
  const iid = join(t.context.dir, 'iid');
  const q2 = quick(t, ['-q', '--iidfile', iid, ...args.slice(1)]);
  t.is(q2.status, 0, q2.stderr);
  t.is(q2.stdout.trim(), readFileSync(iid, 'utf8'));
  t.true(q2.stdout.startsWith(`sha256:${id}`));
  // a tag that moved away comes back with a journal line, as the full build writes it
  t.is(cli(t, ['tag', 'busybox', 'quick:1']).status, 0);
  t.is(quick(t, args.slice(1)).status, 0);
  const log = db(t).journal['docker.io/library/quick:1']!;
  t.deepEqual(log.slice(-2).map((e) => e.by), ['tag', 'build']);
  t.is(log.at(-1)!.digest, digest);
});

rtest('warm builds of an image in place, full or quick, leave images.json, the provenance and the journal as they are', async (t) => {
  const dir = await oldContext(t, { 'a.txt': 'a\n', Dockerfile: 'FROM busybox\nCOPY a.txt /a\nRUN cat /a > /b\n' });
  const args = ['build', '-t', 'same:1', dir];
  t.is(cli(t, args).status, 0);
  const text = () => readFileSync(join(t.context.root, 'images.json'), 'utf8');
  const before = text();
  const outs: string[] = [];
  for (let i = 0; i < 2; i++) {
    // the full build (no plan), then the quick one (the full build's plan)
    rmSync(join(t.context.root, 'build-plans'), { recursive: true, force: true });
    const full = cli(t, args);
    t.is(full.status, 0, full.stderr);
    t.is(text(), before, `full warm build ${i + 1}`);
    const q = quick(t, args.slice(1));
    t.is(q.status, 0, q.stderr);
    t.is(text(), before, `quick warm build ${i + 1}`);
    outs.push(full.stdout, q.stdout);
  }
  t.true(outs.every((o) => o === outs[0]));
  const log = db(t).journal['docker.io/library/same:1']!;
  t.is(log.length, 1, 'one journal line: rollback -1 has no identical image to go to');
  t.not(cli(t, ['image', 'rollback', 'same:1']).status, 0, 'nothing to roll back to');
});

rtest('the quick build falls back when what the build read changed', async (t) => {
  const dir = await oldContext(t, { 'a.txt': 'a\n', 'sub/c.txt': 'c\n', Dockerfile: 'FROM busybox\nCOPY a.txt /a\nRUN cat /a > /b\n' });
  const args = ['-t', 'fb:1', dir];
  const again = () => {
    const r = cli(t, ['build', ...args]);
    t.is(r.status, 0, r.stderr);
    t.is(quick(t, args).status, 0, 'the full build kept a plan');
  };
  t.is(cli(t, ['build', ...args]).status, 0);
  t.is(quick(t, args).status, 0);
  // a file's content, even with its times put back (the ctime tells)
  const old = new Date(2001, 1, 1);
  writeFileSync(join(dir, 'a.txt'), 'A\n');
  utimesSync(join(dir, 'a.txt'), old, old);
  t.is(quick(t, args).status, 99);
  const changed = cli(t, ['build', ...args]);
  t.regex(changed.stdout, /COPY a.txt \/a\n ---> [0-9a-f]{12}\n/, 'the full build misses from the COPY');
  await new Promise((r) => setTimeout(r, 2100));
  again();
  // a file the Dockerfile does not use, in a directory below
  writeFileSync(join(dir, 'sub/d.txt'), 'd\n');
  t.is(quick(t, args).status, 99);
  await new Promise((r) => setTimeout(r, 2100));
  again();
  // the base's tag moved
  t.is(cli(t, ['tag', 'fb:1', 'busybox']).status, 0);
  t.is(quick(t, args).status, 99);
  // the cache pruned
  again();
  t.is(cli(t, ['builder', 'prune', '-a', '-f']).status, 0);
  t.is(quick(t, args).status, 99);
  again();
  // a flag the quick build does not take, --no-cache, a live view
  for (const extra of [['--pull'], ['--no-cache'], ['--progress', 'plain'], ['--secret', 'id=x,src=/dev/null']]) t.is(quick(t, [...extra, ...args]).status, 99, extra.join(' '));
});
