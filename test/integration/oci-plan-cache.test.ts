/**
 * nsbox-runc's plan cache (lib/oci/plan-cache.ts, cpp/runc/create.cc): the first create of a config
 * goes to Node, which stores what it compiled; the next one, with another id, is created by the C++
 * side from that entry. It must give the same container: namespaces, cgroup and its limit, mounts,
 * seccomp, pid file, state files. A changed config misses; a corrupt entry falls back to Node.
 * A hit is told by the entries left as they were (a miss rewrites them).
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { native } from '../../lib/native.js';
import { defaultSpec } from '../../lib/oci/defaults.js';
import { isRoot, rootfs, skipIf } from './_helpers.js';
import { runcBin as bin, type RuncCtx as Ctx } from './runc-fixture.js';

const test = anyTest as TestFn<Ctx>;
const bundleJs = fileURLToPath(new URL('../../dist/runc-bundle/nsbox-runc.cjs', import.meta.url));
const reason = !isRoot ? 'needs root' : !existsSync(bundleJs) ? 'dist/runc-bundle is not built (npm run build:ts)' : !existsSync(bin) ? 'build/Release/nsbox-runc is not built' : undefined;
const rtest = skipIf(reason, test.serial);

const SCRIPT = 'grep -E "^(Seccomp|NoNewPrivs|CapBnd)" /proc/self/status; cat /etc/bundle-file; mkdir /dev/shm/x 2>&1; echo "FOO=$FOO"; grep -c nsbox-runc-cache /proc/self/cgroup';

/** A bundle for `id`: the id in its path and cgroupsPath (as containerd's), a bind of a bundle file, a limit, a seccomp rule. */
function bundle(t: { context: Ctx }, id: string, env: string[] = []): string {
  const b = join(t.context.dir, `bundle-${id}`);
  mkdirSync(b);
  symlinkSync(rootfs(), join(b, 'rootfs'));
  writeFileSync(join(b, 'file'), 'from the bundle\n');
  const spec = defaultSpec() as { process: Record<string, unknown>; linux: Record<string, unknown>; mounts: unknown[] };
  const config = {
    ...spec,
    process: { ...spec.process, terminal: false, args: ['sh', '-c', SCRIPT], env: ['PATH=/bin:/usr/bin', ...env] },
    mounts: [...spec.mounts, { destination: '/etc/bundle-file', type: 'bind', source: 'file', options: ['rbind', 'ro'] }],
    linux: {
      ...spec.linux,
      cgroupsPath: `nsbox-runc-cache/${id}`,
      resources: { memory: { limit: 64 * 1024 * 1024 } },
      seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] },
    },
  };
  writeFileSync(join(b, 'config.json'), JSON.stringify(config));
  return b;
}

const runc = (t: { context: Ctx }, args: string[]) => spawnSync(bin, ['--root', t.context.root, ...args], { encoding: 'utf8', timeout: 60_000 });

/** The plan entries: name → inode (a miss rewrites an entry through a rename: a new inode). */
function entries(t: { context: Ctx }): Map<string, number> {
  const dir = join(t.context.root, '.plans');
  if (!existsSync(dir)) return new Map();
  return new Map(readdirSync(dir).map((n) => [n, statSync(join(dir, n)).ino]));
}

interface Seen {
  state: unknown;
  stateFile: unknown;
  calls: string;
  namespaces: boolean[];
  cgroup: string;
  mounts: string[];
  memoryLimit: string;
  output: string;
}

/** Creates `id`, looks at the held init, starts it, waits for its end, deletes it; all with the id made `ID`. */
async function createAndRun(t: ExecutionContext<Ctx>, id: string, env: string[] = []): Promise<Seen> {
  const b = bundle(t, id, env);
  const out = join(t.context.dir, `out-${id}`);
  const pidFile = join(t.context.dir, `${id}.pid`);
  const fd = openSync(out, 'w+');
  let c;
  try {
    c = spawnSync(bin, ['--root', t.context.root, 'create', '--bundle', b, '--pid-file', pidFile, id], { encoding: 'utf8', stdio: ['ignore', fd, fd], timeout: 60_000 });
  } finally {
    closeSync(fd);
  }
  if (c.status !== 0) throw new Error(`create ${id}: ${c.status} ${readFileSync(out, 'utf8')}`);
  const norm = (s: string) => s.replaceAll(id, 'ID');
  const state = JSON.parse(norm(runc(t, ['state', id]).stdout)) as { pid: number; created: string };
  const pid = state.pid;
  t.is(readFileSync(pidFile, 'utf8'), String(pid));
  const dir = join(t.context.root, id);
  const stateFile = JSON.parse(norm(readFileSync(join(dir, 'state.json'), 'utf8'))) as { pid: number; start: number; created: string; cgroupPaths: Record<string, string> };
  t.is(stateFile.pid, pid);
  const paths = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).cgroupPaths as Record<string, string>;
  const limitFile = paths.memory ? join(paths.memory, 'memory.limit_in_bytes') : join(paths.unified!, 'memory.max');
  const seen: Seen = {
    state: { ...state, pid: 0, created: '' },
    stateFile: { ...stateFile, pid: 0, start: 0, created: '' },
    calls: norm(readFileSync(join(dir, 'calls'), 'utf8')).replace(/^pid \d+$/m, 'pid P').replace(/^start \d+$/m, 'start T').replace(/"created": "[^"]*"/, ''),
    namespaces: ['pid', 'mnt', 'net', 'ipc', 'uts', 'cgroup'].map((n) => readlinkSync(`/proc/${pid}/ns/${n}`) !== readlinkSync(`/proc/self/ns/${n}`)),
    cgroup: norm(readFileSync(`/proc/${pid}/cgroup`, 'utf8')),
    mounts: norm(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split(' ').slice(4, 5).concat(l.split(' - ')[1]!.split(' ')[0]!).join(' ')),
    memoryLimit: readFileSync(limitFile, 'utf8').trim(),
    output: '',
  };
  const fdDone = native.pidfdOpen(pid);
  const done = new Promise<void>((resolve) => native.watchExit(fdDone, () => resolve()));
  t.is(runc(t, ['start', id]).status, 0);
  await done;
  seen.output = norm(readFileSync(out, 'utf8'));
  t.is(runc(t, ['delete', id]).status, 0);
  return seen;
}

test.before((t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'oci-plan-cache-'));
  t.context.root = join(t.context.dir, 'state');
});
test.after.always((t) => {
  if (!t.context.root) return;
  for (const id of existsSync(t.context.root) ? readdirSync(t.context.root).filter((d) => !d.startsWith('.')) : []) runc(t, ['delete', '--force', id]);
  rmSync(t.context.dir, { recursive: true, force: true });
});

rtest('a create from the cached plan makes the same container as the one Node compiled', async (t) => {
  const first = await createAndRun(t, 'plan-cache-first-0001');
  const stored = entries(t);
  t.is(stored.size, 2, 'an exact and a parameterised entry');
  for (const n of stored.keys()) t.is(statSync(join(t.context.root, '.plans', n)).mode & 0o777, 0o600);
  const second = await createAndRun(t, 'plan-cache-second-002');
  t.deepEqual(entries(t), stored, 'a hit: no entry rewritten');
  t.deepEqual(second, first);
  t.deepEqual(first.namespaces, [true, true, true, true, true, true]);
  t.is(first.memoryLimit, String(64 * 1024 * 1024));
  t.regex(first.output, /^Seccomp:\s+2$/m);
  t.regex(first.output, /^NoNewPrivs:\s+1$/m);
  t.regex(first.output, /from the bundle/);
  t.regex(first.output, /Operation not permitted/, 'the seccomp rule refuses mkdir');
  t.true(first.mounts.some((m) => m.startsWith('/etc/bundle-file ')));
});

rtest('a changed config misses; a corrupt entry falls back to Node, which stores it again', async (t) => {
  const base = entries(t);
  const changed = await createAndRun(t, 'plan-cache-changed-03', ['FOO=bar']);
  t.regex(changed.output, /^FOO=bar$/m);
  const after = entries(t);
  t.is(after.size, base.size + 2, 'the changed config got entries of its own');
  const dir = join(t.context.root, '.plans');
  const sizes = new Map([...after.keys()].map((n) => [n, statSync(join(dir, n)).size]));
  for (const n of after.keys()) truncateSync(join(dir, n), Math.floor(sizes.get(n)! / 2));
  const again = await createAndRun(t, 'plan-cache-corrupt-004', ['FOO=bar']);
  t.deepEqual(again, changed);
  const rewritten = entries(t);
  const whole = [...after.keys()].filter((n) => statSync(join(dir, n)).size === sizes.get(n));
  t.is(whole.length, 1, 'the parameterised entry of the config, stored whole again');
  t.is(rewritten.size, after.size + 1, 'and an exact one for the new bytes');
});
