/**
 * The native launcher (cpp/launcher/main.cc, build/Release/nsbox-launcher; bin/nsbox once
 * installed): a fully cached build whose image is in place is answered from its fast record
 * (lib/build/build-fast-record.ts) as the Node path answers it, without Node; after any change it
 * falls back; every other command is Node exec'd with the same arguments, stdio and exit.
 * "Without Node" is shown by a PATH with no node: a fallback then fails with env's 127.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSuite, context, type BuildCtx } from './build-fixture.js';
import { skipIf } from './_helpers.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(repo, 'bin', 'nsbox.js');
const launcher = join(repo, 'build', 'Release', 'nsbox-launcher');
const suite = buildSuite('nsbox-build-launcher-');
const rtest = skipIf(existsSync(launcher) ? undefined : `no ${launcher} (npm run build:native)`, suite);

type T = { context: BuildCtx };
const env = (t: T, extra: Record<string, string> = {}) => ({ ...process.env, NSBOX_ROOT: t.context.root, ...extra });
const node = (t: T, args: string[], input?: string) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: env(t), cwd: t.context.dir, timeout: 120_000, input: input ?? '' });
/** The launcher with no node on PATH: 0 when it answered itself, 127 when it would have run Node. */
const fast = (t: T, args: string[], extra: Record<string, string> = {}, input?: string) =>
  spawnSync(launcher, args, { encoding: 'utf8', env: env(t, { PATH: '/nonexistent-nsbox-test', ...extra }), cwd: t.context.dir, input: input ?? '' });
const images = (t: T) => readFileSync(join(t.context.root, 'images.json'), 'utf8');

async function oldContext(t: T, files: Record<string, string>): Promise<string> {
  const dir = context(t, files);
  await new Promise((r) => setTimeout(r, 2100));
  return dir;
}
const settle = () => new Promise((r) => setTimeout(r, 2100));

rtest('a cached build answered without Node: the Node path\'s output, exit code, iidfile and store', async (t) => {
  const dir = await oldContext(t, {
    'a.txt': 'a\n',
    Dockerfile: ['FROM busybox AS one', 'COPY a.txt /a', 'RUN cat /a > /one', 'FROM busybox', 'COPY --from=one /one /one', 'RUN cat /one'].join('\n'),
  });
  const args = ['build', '-t', 'fast:1', '-t', 'fast:2', '--build-arg', 'UNUSED=1', '--label', 'k=v', dir];
  const cold = node(t, [args[0]!, '--no-cache', ...args.slice(1)]);
  t.is(cold.status, 0, cold.stderr);
  const db = images(t);
  // the cold build kept the record of its warm build
  const f = fast(t, args);
  t.is(f.status, 0, `fell back: ${f.stderr}`);
  const viaNode = node(t, args);
  t.is(viaNode.status, 0, viaNode.stderr);
  t.is(f.stdout, viaNode.stdout);
  t.is(f.stderr, viaNode.stderr);
  t.regex(f.stdout, /Step 3\/6 : RUN cat \/a > \/one\n ---> Using cache\n/);
  t.regex(f.stderr, /One or more build-args \[UNUSED\] were not consumed/);
  t.is(images(t), db, 'nothing written to images.json by either');
  // -q and --iidfile (relative to the cwd): a Node build of that command line keeps its record
  const qargs = ['build', '-q', '--iidfile', 'iid', '-t', 'fast:1', '-t', 'fast:2', '--build-arg', 'UNUSED=1', '--label', 'k=v', dir];
  const q1 = node(t, qargs);
  t.is(q1.status, 0, q1.stderr);
  const iid = readFileSync(join(t.context.dir, 'iid'), 'utf8');
  rmSync(join(t.context.dir, 'iid'));
  const q2 = fast(t, qargs);
  t.is(q2.status, 0, q2.stderr);
  t.is(q2.stdout, q1.stdout);
  t.is(q2.stderr, q1.stderr);
  t.is(readFileSync(join(t.context.dir, 'iid'), 'utf8'), iid);
  t.is(`${iid}\n`, q2.stdout);
  t.is(images(t), db);
  // a stderr the live view would take (a terminal) is the full command's: not tested here (no tty);
  // a variable in the key is another command line
  t.is(fast(t, args, { NSBOX_OTHER: '1' }).status, 127);
  t.is(fast(t, args, { SOURCE_DATE_EPOCH: '0' }).status, 127);
});

rtest('the launcher falls back after each kind of change, and answers again once a Node build has run', async (t) => {
  const dir = await oldContext(t, { 'a.txt': 'a\n', 'sub/c.txt': 'c\n', Dockerfile: 'FROM busybox\nCOPY a.txt /a\nRUN cat /a > /b\n' });
  const args = ['build', '-t', 'fb:1', dir];
  const fellBack = (what: string, extra: string[] = [], input?: string) => {
    const r = fast(t, [...args.slice(0, 1), ...extra, ...args.slice(1)], {}, input);
    t.is(r.status, 127, what);
    t.is(r.stdout, '', `${what}: nothing printed before falling back`);
  };
  const again = async (what: string) => {
    await settle();
    const r = node(t, args);
    t.is(r.status, 0, r.stderr);
    t.is(fast(t, args).status, 0, `${what}: the Node build kept a record`);
  };
  t.is(node(t, args).status, 0);
  t.is(fast(t, args).status, 0);
  // a file's content, even with its times put back (the ctime tells)
  const old = new Date(2001, 1, 1);
  writeFileSync(join(dir, 'a.txt'), 'A\n');
  utimesSync(join(dir, 'a.txt'), old, old);
  fellBack('content');
  const changed = node(t, args);
  t.regex(changed.stdout, /COPY a.txt \/a\n ---> [0-9a-f]{12}\n/, 'the full build misses from the COPY');
  await again('content');
  // a new file in a directory below
  writeFileSync(join(dir, 'sub/d.txt'), 'd\n');
  fellBack('new file');
  await again('new file');
  // the base's tag moved
  t.is(node(t, ['tag', 'fb:1', 'busybox']).status, 0);
  fellBack('base tag');
  await again('base tag');
  // the tag built moved away
  t.is(node(t, ['tag', 'busybox', 'fb:1']).status, 0);
  fellBack('own tag');
  await again('own tag');
  // the cache pruned
  t.is(node(t, ['builder', 'prune', '-a', '-f']).status, 0);
  fellBack('prune');
  await again('prune');
  // another flag, a context from stdin
  fellBack('--pull', ['--pull']);
  fellBack('--no-cache', ['--no-cache']);
  const stdin = fast(t, ['build', '-t', 'fb:1', '-'], {}, 'not a tar');
  t.is(stdin.status, 127, 'stdin context');
});

rtest('other commands: Node exec\'d in the same process with the same arguments, stdin, exit code and signals', (t) => {
  const fake = join(t.context.dir, 'fake-node');
  mkdirSync(fake, { recursive: true });
  writeFileSync(join(fake, 'node'), '#!/bin/sh\nprintf "%s\\n" "$$" "$@"\n/bin/cat\n[ "$2" = kill ] && kill -TERM $$\nexit 7\n');
  chmodSync(join(fake, 'node'), 0o755);
  const r = spawnSync(launcher, ['ps', 'a b', 'c\nd', ''], { encoding: 'utf8', env: { ...process.env, PATH: fake }, input: 'from stdin' });
  t.is(r.status, 7);
  t.is(r.stdout, `${r.pid}\n${bin}\nps\na b\nc\nd\n\nfrom stdin`, 'the same pid (exec, not spawn), bin/nsbox.js and the arguments as given');
  const k = spawnSync(launcher, ['kill'], { encoding: 'utf8', env: { ...process.env, PATH: fake } });
  t.is(k.signal, 'SIGTERM');
  // `build` the launcher has no record for goes to Node the same way
  const b = spawnSync(launcher, ['build', '-q', '.'], { encoding: 'utf8', env: { ...process.env, PATH: fake, NSBOX_ROOT: t.context.root }, cwd: t.context.dir });
  t.is(b.status, 7);
  t.is(b.stdout, `${b.pid}\n${bin}\nbuild\n-q\n.\n`);
  // and with the real node: the same answers as bin/nsbox.js
  // (images -q: the table's "N seconds ago" may move between the two)
  for (const args of [['images', '-q'], ['nope'], ['ps', '--bad-flag'], ['--version']]) {
    const a = spawnSync(launcher, args, { encoding: 'utf8', env: env(t) });
    const b2 = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: env(t) });
    t.is(a.status, b2.status, args.join(' '));
    t.is(a.stdout, b2.stdout, args.join(' '));
    t.is(a.stderr, b2.stderr, args.join(' '));
  }
});

rtest('install: the launcher replaces bin/nsbox in an installed package, never in a git checkout', (t) => {
  const pkg = join(t.context.dir, 'pkg');
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  mkdirSync(join(pkg, 'tools'));
  mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
  for (const f of ['nsbox', 'nsbox.js', 'compile-bundle.js', 'package.json']) copyFileSync(join(repo, 'bin', f), join(pkg, 'bin', f));
  copyFileSync(join(repo, 'tools', 'install-launcher.cjs'), join(pkg, 'tools', 'install-launcher.cjs'));
  copyFileSync(launcher, join(pkg, 'build', 'Release', 'nsbox-launcher'));
  copyFileSync(join(repo, 'package.json'), join(pkg, 'package.json'));
  symlinkSync(join(repo, 'dist'), join(pkg, 'dist'));
  symlinkSync(join(repo, 'node_modules'), join(pkg, 'node_modules'));
  const js = readFileSync(join(pkg, 'bin', 'nsbox'));
  // a checkout: left as it is
  mkdirSync(join(pkg, '.git'));
  t.is(spawnSync(process.execPath, ['tools/install-launcher.cjs'], { cwd: pkg }).status, 0);
  t.deepEqual(readFileSync(join(pkg, 'bin', 'nsbox')), js);
  rmSync(join(pkg, '.git'), { recursive: true });
  t.is(spawnSync(process.execPath, ['tools/install-launcher.cjs'], { cwd: pkg }).status, 0);
  t.deepEqual(readFileSync(join(pkg, 'bin', 'nsbox')), readFileSync(launcher));
  const v = spawnSync(join(pkg, 'bin', 'nsbox'), ['--version'], { encoding: 'utf8', env: env(t) });
  const w = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env: env(t) });
  t.is(v.status, 0, v.stderr);
  t.is(v.stdout, w.stdout);
  // the JS bin/nsbox of a checkout runs the CLI too
  const j = spawnSync(join(repo, 'bin', 'nsbox'), ['--version'], { encoding: 'utf8', env: env(t) });
  t.is(j.stdout, w.stdout);
});
