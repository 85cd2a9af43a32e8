/**
 * A container's cgroup removed by a process in another memory cgroup than the one that made it. A
 * relative cgroup parent lies beneath the maker's own cgroup in each hierarchy; a remover that
 * looked beneath its own left the maker's memory cgroup behind (empty, memory only). The test makes
 * two memory cgroups beneath its own (and touches no other): the container is made from one, removed
 * from the other, and nothing of it may be left in either.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { isRoot, rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, type ImageRegistry, registryUnavailable } from '../fixtures/registry.js';
import { until } from '../fixtures/until.js';

interface Ctx extends ImageRegistry {
  root: string;
  /** Two memory cgroups beneath this process's own. */
  a: string;
  b: string;
}
const test = anyTest as TestFn<Ctx>;
const bin = fileURLToPath(new URL('../../bin/nsbox.js', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const lib = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));
const MEMORY = '/sys/fs/cgroup/memory';
const ownMemory = (() => {
  try {
    return /^\d+:memory:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
})();
const reason = !isRoot
  ? 'needs root'
  : ownMemory === undefined || !existsSync(MEMORY)
    ? 'needs a cgroup v1 memory hierarchy'
    : !existsSync(dist)
      ? 'dist/ is not built (npm test builds it)'
      : registryUnavailable();
const rtest = skipIf(reason, test.serial);

/** Every directory at or below `dir`, deepest first. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const subs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [...subs.flatMap((e) => tree(join(dir, e.name))), dir];
}

test.before(async (t) => {
  if (reason) return;
  t.context.root = mkdtempSync(join(tmpdir(), 'nsbox-cgelse-'));
  // Not named nsbox-…: a removal takes the empty nsbox-named parents of a container's cgroup with it.
  const tag = `cgroup-elsewhere-${process.pid}`;
  t.context.a = join(MEMORY, ownMemory!, `${tag}-a`);
  t.context.b = join(MEMORY, ownMemory!, `${tag}-b`);
  mkdirSync(t.context.a);
  mkdirSync(t.context.b);
  Object.assign(t.context, await startImageRegistry(rootfs()));
});
test.after.always(async (t) => {
  await t.context.stop?.();
  // Only what this test made: its two cgroups and whatever was left beneath them (empty: their processes are gone).
  for (const d of [t.context.a, t.context.b].filter(Boolean)) for (const sub of tree(d)) rmdirSync(sub);
  if (t.context.root) rmSync(t.context.root, { recursive: true, force: true });
});

/** `argv` run by node from inside the memory cgroup `cg` (the shell moves itself there first). */
function inCgroup(t: { context: Ctx }, cg: string, argv: string[]): ChildProcess {
  return spawn('sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec "$@"`, 'sh', process.execPath, ...argv], {
    env: { ...process.env, NSBOX_ROOT: t.context.root },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function outputOf(p: ChildProcess, marker: string): { ready: Promise<void>; errors: () => string } {
  let out = '';
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()).includes(marker) && resolve());
    p.on('close', (code, signal) => reject(new Error(`exited (${code ?? signal}) before "${marker}": ${err}`)));
  });
  return { ready, errors: () => err };
}

const killed = (p: ChildProcess) => new Promise<void>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : (p.once('close', () => resolve()), p.kill('SIGKILL'))));

/** The container's directory in each hierarchy that still exists, under /sys/fs/cgroup. */
function cgroupsNamed(id: string, t: { context: Ctx }): string[] {
  const found = spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '4', '-type', 'd', '-name', id], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  return [...found, ...tree(t.context.a).filter((d) => d.endsWith(id)), ...tree(t.context.b).filter((d) => d.endsWith(id))].filter((d, i, all) => all.indexOf(d) === i);
}

rtest('a foreground run --rm made from one memory cgroup, its CLI killed -9, the next command (ps) from another: every cgroup of it removed', async (t) => {
  const img = `${t.context.reg.host}/busybox:1`;
  const run = inCgroup(t, t.context.a, [bin, 'run', '--rm', '--name', 'made-in-a', img, 'sh', '-c', 'echo ready; exec sleep 100']);
  t.teardown(() => killed(run));
  await outputOf(run, 'ready').ready;
  const inspect = () => JSON.parse(spawnSync(process.execPath, [bin, 'inspect', 'made-in-a'], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.root } }).stdout || '[]') as Array<{ id: string; state: string }>;
  await until('the run to record it running', () => inspect()[0]?.state === 'running');
  const id = inspect()[0]!.id;
  t.true(existsSync(join(t.context.a, 'nsbox', id)), 'its memory cgroup lies beneath the maker\'s');
  await killed(run);
  // The next command's engine open removes what the killed CLI left (owner-reap.ts), from B.
  const ps = inCgroup(t, t.context.b, [bin, 'ps', '-a']);
  const psOut = outputOf(ps, 'CONTAINER ID');
  await psOut.ready;
  await new Promise((resolve) => ps.once('close', resolve));
  t.is(ps.exitCode, 0, psOut.errors());
  t.deepEqual(cgroupsNamed(id, t), []);
});

rtest('an SDK container made from one memory cgroup, its process killed -9, reaped by an engine open from another: every cgroup of it removed', async (t) => {
  const sdk = `import { Container } from ${JSON.stringify(lib)};
    const c = await Container.create({ rootfs: ${JSON.stringify(rootfs())}, command: ['sleep', '100'], stdio: 'ignore' });
    await c.start();
    console.log('ready ' + c.id);
    await new Promise(() => {});`;
  const maker = inCgroup(t, t.context.a, ['--import=tsx', '--input-type=module', '-e', sdk]);
  t.teardown(() => killed(maker));
  let line = '';
  maker.stdout!.on('data', (d: Buffer) => (line += d.toString()));
  // console.log writes the line at once.
  await outputOf(maker, '\n').ready;
  const id = /^ready ([0-9a-f]{64})$/m.exec(line)![1]!;
  t.true(existsSync(join(t.context.a, 'nsbox', id)), 'its memory cgroup lies beneath the maker\'s');
  await killed(maker);
  const reap = `import { Engine } from ${JSON.stringify(lib)};
    const r = await (await Engine.open({ repair: false })).reapDeadOwners();
    console.log('reaped ' + r.containers.join(' '));`;
  const reaper = inCgroup(t, t.context.b, ['--import=tsx', '--input-type=module', '-e', reap]);
  const out = outputOf(reaper, 'reaped');
  await out.ready;
  await new Promise((resolve) => reaper.once('close', resolve));
  t.is(reaper.exitCode, 0, out.errors());
  t.deepEqual(cgroupsNamed(id, t), []);
});

rtest('a record whose cgroup paths name a cgroup not its own: the removal leaves that cgroup and finds its own by name', async (t) => {
  const img = `${t.context.reg.host}/busybox:1`;
  // Made from A, removed from A: the lookup by name (beneath the remover's own cgroup) finds it.
  const run = inCgroup(t, t.context.a, [bin, 'run', '--rm', '--name', 'lied-about', img, 'sh', '-c', 'echo ready; exec sleep 100']);
  t.teardown(() => killed(run));
  await outputOf(run, 'ready').ready;
  const inspect = () => JSON.parse(spawnSync(process.execPath, [bin, 'inspect', 'lied-about'], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.root } }).stdout || '[]') as Array<{ id: string; state: string }>;
  await until('the run to record it running', () => inspect()[0]?.state === 'running');
  const id = inspect()[0]!.id;
  await killed(run);
  // An empty cgroup in the test's own B that the record is edited to name: nsbox-named, but not the container's.
  const decoy = join(t.context.b, 'nsbox', 'decoy');
  mkdirSync(decoy, { recursive: true });
  const file = join(t.context.root, 'containers', id, 'record.json');
  const record = JSON.parse(readFileSync(file, 'utf8')) as { supervisor?: { cgroupPaths?: Record<string, string> } };
  t.truthy(record.supervisor?.cgroupPaths?.memory, 'the record names its memory cgroup');
  record.supervisor!.cgroupPaths = { memory: decoy };
  writeFileSync(file, JSON.stringify(record));
  const ps = inCgroup(t, t.context.a, [bin, 'ps', '-a']);
  const psOut = outputOf(ps, 'CONTAINER ID');
  await psOut.ready;
  await new Promise((resolve) => ps.once('close', resolve));
  t.is(ps.exitCode, 0, psOut.errors());
  t.true(existsSync(decoy), 'the cgroup the record named, not the container\'s, is still there');
  t.deepEqual(cgroupsNamed(id, t), []);
});
