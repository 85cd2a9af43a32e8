/**
 * The nsbox CLI end to end: the real binary (bin/nsbox.js over dist/, built by `npm test`) against
 * a real registry on 127.0.0.1 with images this suite builds; -it through a real pty (script(1)).
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { isRoot, rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, type ImageRegistry, registryUnavailable } from '../fixtures/registry.js';
import { until } from '../fixtures/until.js';

interface Ctx extends ImageRegistry {
  root: string;
}
const test = anyTest as TestFn<Ctx>;
const bin = fileURLToPath(new URL('../../bin/nsbox.js', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const quickPs = fileURLToPath(new URL('../../dist/cli-bundle/quick-ps.cjs', import.meta.url));
const quickExec = fileURLToPath(new URL('../../dist/cli-bundle/quick-exec.cjs', import.meta.url));
const quickRunBundle = fileURLToPath(new URL('../../dist/cli-bundle/quick-run.cjs', import.meta.url));
const reason = !isRoot ? 'needs root' : !existsSync(dist) ? 'dist/ is not built (npm test builds it)' : registryUnavailable();
const rtest = skipIf(reason, test.serial);

function nsbox(t: { context: Ctx }, args: string[], input?: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input: input ?? '', env: { ...process.env, ...env, NSBOX_ROOT: t.context.root }, timeout: 60_000 });
}

test.before(async (t) => {
  if (reason) return;
  t.context.root = mkdtempSync(join(tmpdir(), 'nsbox-cli-'));
  Object.assign(t.context, await startImageRegistry(rootfs()));
});
test.after.always(async (t) => {
  await t.context.stop?.();
  if (t.context.root) {
    // Containers run without --rm keep their cgroups until removed: rm them as a user would, so
    // deleting the root leaves no empty cgroup behind.
    const ids = nsbox(t, ['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (ids.length) nsbox(t, ['rm', '-f', ...ids]);
    rmSync(t.context.root, { recursive: true, force: true });
  }
});

const img = (t: { context: Ctx }, name = 'busybox:1') => `${t.context.reg.host}/${name}`;

rtest('pull, images (-q, --digests), tag, rmi', (t) => {
  const pull = nsbox(t, ['pull', img(t)]);
  t.is(pull.status, 0, pull.stderr);
  t.regex(pull.stdout, /: Pulling from busybox\n/);
  t.regex(pull.stdout, /[0-9a-f]{12}: Pull complete\n/);
  t.regex(pull.stdout, /Digest: sha256:[0-9a-f]{64}\n/);
  t.true(pull.stdout.endsWith(`${img(t)}\n`));
  const images = nsbox(t, ['images']);
  t.regex(images.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/);
  t.regex(images.stdout, new RegExp(`${t.context.reg.host}/busybox\\s+1\\s+[0-9a-f]{12}\\s+.+ ago\\s+[\\d.]+[kM]B\\n`));
  t.regex(nsbox(t, ['images', '-q']).stdout, /^[0-9a-f]{12}\n$/);
  t.regex(nsbox(t, ['images', '--digests']).stdout, /DIGEST/);
  t.is(nsbox(t, ['tag', img(t), 'mine:v1']).status, 0);
  t.regex(nsbox(t, ['images']).stdout, /\nmine\s+v1\s/);
  const rmi = nsbox(t, ['rmi', 'mine:v1']);
  t.is(rmi.stdout, 'Untagged: docker.io/library/mine:v1\n');
  const missing = nsbox(t, ['rmi', 'nope:1']);
  t.is(missing.status, 1);
  t.regex(missing.stderr, /No such image: nope:1/);
});

rtest('run: exit codes, stdin with -i, env, volumes, read-only, memory limit', (t) => {
  const ok = nsbox(t, ['run', '--rm', img(t), 'sh', '-c', 'echo hi; exit 3']);
  t.is(ok.stdout, 'hi\n');
  t.is(ok.status, 3);
  t.is(nsbox(t, ['run', img(t), '/bin/nope']).status, 127);
  t.is(nsbox(t, ['run', '--rm', img(t), '/etc/passwd']).status, 126, 'a command that cannot be invoked');
  const bad = nsbox(t, ['run', '--bogus', img(t)]);
  t.is(bad.status, 125);
  t.regex(bad.stderr, /unknown flag: --bogus/);
  t.is(nsbox(t, ['run', '-i', img(t), 'cat'], 'piped\n').stdout, 'piped\n');
  t.is(nsbox(t, ['run', '--rm', '-i', img(t), 'cat'], 'piped\n').stdout, 'piped\n', 'a foreground --rm run reads our stdin itself');
  t.is(nsbox(t, ['run', '--rm', img(t), 'cat'], 'piped\n').stdout, '', 'without -i, no stdin (foreground --rm too)');
  t.is(nsbox(t, ['run', img(t), 'cat'], 'piped\n').stdout, '', 'without -i, no stdin');
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-cli-vol-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'f'), 'from host\n');
  mkdirSync(join(dir, 'w'));
  const vol = nsbox(t, ['run', '-e', 'A=1', '-v', `${dir}:/data:ro`, '-v', `${join(dir, 'w')}:/w`, '-w', '/data', '--read-only', '--tmpfs', '/scratch', img(t),
    'sh', '-c', 'echo $A; cat f; pwd; touch /data/x 2>/dev/null || echo ro; echo y > /w/y && echo rw; touch /x 2>/dev/null || echo rootro; touch /scratch/s && echo tmpfs']);
  t.is(vol.stdout, '1\nfrom host\n/data\nro\nrw\nrootro\ntmpfs\n', vol.stderr);
  t.true(existsSync(join(dir, 'w/y')));
  t.is(nsbox(t, ['run', '-m', '32m', img(t), 'tail', '/dev/zero']).status, 137, 'OOM-killed: 128 + SIGKILL');
  t.is(nsbox(t, ['run', '--network', 'host', img(t), 'sh', '-c', 'ls /sys/class/net | wc -l']).stdout.trim() !== '1', true, '--network host sees the host interfaces');
});

rtest('run -it through a real terminal', (t) => {
  const r = spawnSync('script', ['-qec', `${process.execPath} ${bin} run -it ${img(t)} sh -c 'test -t 0 && echo TTY; sleep 0.3; stty size; exit 4'`, '/dev/null'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NSBOX_ROOT: t.context.root },
    timeout: 60_000,
  });
  // script(1) echoes what reaches the terminal's input (a NUL as ^@ when its stdin ends): not ours to check
  t.is(r.stdout.replace(/\r|\^@|\0/g, ''), 'TTY\n24 80\n');
  t.is(r.status, 4);
});

rtest('run -it: typed input, ^C to the foreground process, ^D as end of input, exit code', (t) => {
  // Keys are typed into script(1)'s terminal with pauses, as a person would.
  const keys = "sleep 1; printf 'echo typed $((6*7))\\r'; sleep 0.5; printf 'sleep 100\\r'; sleep 0.5; printf '\\003'; sleep 0.5; " +
    "printf 'cat\\r'; sleep 0.3; printf 'x\\r'; sleep 0.3; printf '\\004'; sleep 0.3; printf 'exit 7\\r'; sleep 1";
  const r = spawnSync('sh', ['-c', `(${keys}) | script -qec "${process.execPath} ${bin} run -it --rm ${img(t)} sh" /dev/null`], {
    encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.root }, timeout: 60_000,
  });
  const out = r.stdout.replace(/\r/g, '');
  t.regex(out, /\ntyped 42\n/, 'typed input reached the shell in the container');
  t.regex(out, /sleep 100\n(\^C)?\n?\/ # /, '^C ended the sleep, not the container');
  t.regex(out, /cat\nx\nx\n/, 'cat echoed its input');
  t.regex(out, /exit 7\n$/);
  t.is(r.status, 7, 'its exit code is ours');
});

rtest('save and load round-trip; version, info, unknown commands', (t) => {
  const file = join(t.context.root, 'busybox.tar');
  t.is(nsbox(t, ['save', '-o', file, img(t)]).status, 0);
  t.true(existsSync(file));
  // Stopped containers of the earlier tests still use the image: refused, as docker refuses it.
  const refused = nsbox(t, ['rmi', img(t)]);
  t.is(refused.status, 1);
  t.regex(refused.stderr, /image is in use by container [0-9a-f]{12} \(exited\).*use -f/);
  const prune = nsbox(t, ['system', 'prune', '-f']);
  t.is(prune.status, 0, prune.stderr);
  t.regex(prune.stdout, /Deleted Containers:\n[0-9a-f]{64}\n/);
  t.is(nsbox(t, ['ps', '-aq']).stdout, '');
  t.is(nsbox(t, ['rmi', img(t)]).status, 0);
  const load = nsbox(t, ['load', '-i', file]);
  t.is(load.status, 0, load.stderr);
  t.regex(load.stdout, /Loaded image: /);
  t.is(nsbox(t, ['run', '--pull', 'never', img(t), 'echo', 'loaded']).stdout, 'loaded\n');
  t.regex(nsbox(t, ['version']).stdout, /^nsbox version \d+\.\d+\.\d+/);
  t.regex(nsbox(t, ['info']).stdout, /Cgroup mode: (v1|v2|hybrid)/);
  const unknown = nsbox(t, ['frobnicate']);
  t.is(unknown.status, 125);
  t.regex(unknown.stderr, /'frobnicate' is not a nsbox command/);
  const help = nsbox(t, ['run', '--help']);
  t.is(help.status, 0);
  t.regex(help.stdout, /^\nUsage: {2}nsbox run \[OPTIONS\] IMAGE \[COMMAND\] \[ARG\.\.\.\]\n[^]*\n {2}-e, --env list\n/);
  t.is(nsbox(t, ['run', img(t), 'echo', '--help']).stdout, '--help\n', '--help after the image is the command\'s');
  const badFlag = nsbox(t, ['ps', '--bogus']);
  t.is(badFlag.status, 125);
  t.regex(badFlag.stderr, /unknown flag: --bogus\nSee 'nsbox ps --help'/);
});

rtest('runs are recorded: ps -a, names, inspect, rm; --rm leaves no record', (t) => {
  t.is(nsbox(t, ['run', '--name', 'web', img(t), 'sh', '-c', 'exit 3']).status, 3);
  const conflict = nsbox(t, ['run', '--name', 'web', img(t), 'true']);
  t.is(conflict.status, 125);
  t.regex(conflict.stderr, /Conflict\. The container name "\/web" is already in use by container "[0-9a-f]{64}"/);
  t.is(nsbox(t, ['run', '--rm', '--name', 'gone', img(t), 'true']).status, 0);
  const ps = nsbox(t, ['ps', '-a']);
  t.regex(ps.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES\n/);
  t.regex(ps.stdout, /[0-9a-f]{12}\s+.*busybox:1\s+"sh -c exit 3"\s+.+\s+Exited \(3\) .+ ago\s+web\n/);
  t.notRegex(ps.stdout, /gone/);
  t.is(nsbox(t, ['ps']).stdout.split('\n').length, 2, 'nothing running: the header only');
  const id = nsbox(t, ['ps', '-aq']).stdout.trim().split('\n');
  t.true(id.length >= 1 && id.every((x) => /^[0-9a-f]{12}$/.test(x)));
  const inspect = JSON.parse(nsbox(t, ['inspect', 'web']).stdout) as Array<{ name: string; exitCode: number; state: string }>;
  t.like(inspect[0], { name: 'web', exitCode: 3, state: 'exited' });
  t.is(nsbox(t, ['rm', 'web']).stdout, 'web\n');
  t.regex(nsbox(t, ['rm', 'web']).stderr, /No such container: web/);
});

rtest('run -d: the container outlives the CLI; ps, logs (-f, --tail, -t), kill, stop, rm -f; nothing left behind', async (t) => {
  const run = nsbox(t, ['run', '-d', '--name', 'bg', img(t), 'sh', '-c', 'trap "echo bye; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']);
  t.is(run.status, 0, run.stderr);
  const id = run.stdout.trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  t.teardown(() => nsbox(t, ['rm', '-f', id]));
  await until('two ticks in the log', () => nsbox(t, ['logs', 'bg']).stdout.includes('tick 1'));
  t.regex(nsbox(t, ['ps']).stdout, new RegExp(`${id.slice(0, 12)}\\s+.*Up .*\\s+bg\\n`));
  // bin/nsbox.js's quick ps (its own bundle, no engine, no zod) answers this by itself: it exits 99 if it would fall back.
  const quick = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(quickPs)}).run(['-a']).then((c) => process.exit(c ?? 99))`], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: t.context.root } });
  t.is(quick.status, 0, quick.stderr);
  t.regex(quick.stdout, new RegExp(`${id.slice(0, 12)}\\s+.*Up .*\\s+bg\\n`));
  const logs = nsbox(t, ['logs', '--tail', '2', '-t', 'bg']).stdout.trim().split('\n');
  t.is(logs.length, 2);
  t.regex(logs[1]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z tick \d+$/);
  t.is(nsbox(t, ['stop', '-t', '5', 'bg']).stdout, 'bg\n');
  const after = nsbox(t, ['logs', 'bg']).stdout;
  t.regex(after, /^tick 0\n/);
  t.regex(after, /bye\n$/, 'the stop signal reached the container, which exited by itself');
  t.regex(nsbox(t, ['ps', '-a']).stdout, /Exited \(0\) .* ago\s+bg\n/);
  t.regex(nsbox(t, ['logs', '-f', 'bg']).stdout, /bye\n$/, 'logs -f ends with the container');
  t.is(nsbox(t, ['rm', 'bg']).stdout, 'bg\n');
  t.false(existsSync(join(t.context.root, 'containers', id)), 'the container directory (writable layer, shim bundle) is gone');

  // kill, and rm -f of a running one
  const second = nsbox(t, ['run', '-d', img(t), 'sleep', '100']).stdout.trim();
  t.teardown(() => nsbox(t, ['rm', '-f', second]));
  t.is(nsbox(t, ['kill', '-s', 'SIGKILL', second.slice(0, 12)]).status, 0);
  const ps = await until('ps -a to show it exited', () => (s => /Exited/.test(s) && s)(nsbox(t, ['ps', '-a']).stdout));
  t.regex(ps, new RegExp(`${second.slice(0, 12)}.*Exited \\(137\\)`));
  const third = nsbox(t, ['run', '-d', img(t), 'sleep', '100']).stdout.trim();
  t.teardown(() => nsbox(t, ['rm', '-f', third]));
  t.regex(nsbox(t, ['rm', third]).stderr, /You cannot remove a running container [0-9a-f]{64}\. Stop the container before attempting removal or force remove/);
  t.is(nsbox(t, ['rm', '-f', third]).status, 0);
  t.is(nsbox(t, ['rm', second]).status, 0);
  const left = nsbox(t, ['ps', '-aq', '--no-trunc']).stdout;
  for (const x of [id, second, third]) t.false(left.includes(x), `${x.slice(0, 12)} is removed`);
  t.false(existsSync(join(t.context.root, 'containers', third)));
  t.deepEqual(cgroupsOf(third), [], 'rm -f removed its cgroups');
});

/** The container's cgroup directories in every hierarchy (none once it is removed). */
function cgroupsOf(id: string): string[] {
  const r = spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '8', '-type', 'd', '-name', `*${id}*`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

rtest('exec (-i, -t, -d, -e, -w, -u, exit codes), pause/unpause, stats, stop/start/restart keep the filesystem', async (t) => {
  const id = nsbox(t, ['run', '-d', '--name', 'svc', img(t), 'sh', '-c', 'echo started; exec sleep 1000']).stdout.trim();
  t.teardown(() => nsbox(t, ['rm', '-f', id]));
  const ex = nsbox(t, ['exec', 'svc', 'sh', '-c', 'echo in $(hostname) as $(id -u); exit 5']);
  t.is(ex.stdout, `in ${id.slice(0, 12)} as 0\n`);
  t.is(ex.status, 5, 'exec exits with its command\'s code');
  t.is(nsbox(t, ['exec', '-i', '-e', 'X=1', '-w', '/tmp', 'svc', 'sh', '-c', 'cat; echo $X; pwd'], 'piped\n').stdout, 'piped\n1\n/tmp\n');
  t.regex(nsbox(t, ['exec', '-u', '1000:1000', 'svc', 'id']).stdout, /^uid=1000\b.*gid=1000\b/);
  t.is(nsbox(t, ['exec', 'svc', '/bin/nope']).status, 127);
  t.is(nsbox(t, ['exec', '-d', 'svc', 'sh', '-c', 'sleep 0.2; echo detached > /marker']).status, 0);
  const marker = await until('the detached exec to write /marker', () => nsbox(t, ['exec', 'svc', 'cat', '/marker']).stdout || false);
  t.is(marker, 'detached\n', 'exec -d outlived the CLI');
  // A terminal without a size (script(1) with no controlling terminal) gives the default 80×24; a
  // sized one gives its own size, set before the command starts. The pause before stty lets any
  // later resize from the CLI land first (a 0×0 one once did, and stty then failed).
  for (const [setup, want] of [['', '24 80'], ['stty rows 30 cols 100; ', '30 100']]) {
    const tty = spawnSync('script', ['-qec', `${setup}${process.execPath} ${bin} exec -it svc sh -c 'test -t 0 && echo TTY; sleep 0.3; stty size; exit 6'`, '/dev/null'], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NSBOX_ROOT: t.context.root }, timeout: 60_000,
    });
    t.is(tty.stdout.replace(/\r|\^@|\0/g, ''), `TTY\n${want}\n`);
    t.is(tty.status, 6);
  }
  // The container's own processes: only its init and what exec is running now.
  t.is(nsbox(t, ['exec', 'svc', 'cat', '/proc/1/cmdline']).stdout, 'sleep\x001000\x00', 'in its pid namespace: its init is pid 1');

  t.is(nsbox(t, ['pause', 'svc']).stdout, 'svc\n');
  t.regex(nsbox(t, ['ps']).stdout, /Up .* \(Paused\)\s+svc\n/);
  const paused = nsbox(t, ['exec', 'svc', 'true']);
  t.not(paused.status, 0);
  t.regex(paused.stderr, /is paused, unpause the container before exec/);
  t.is(nsbox(t, ['unpause', 'svc']).stdout, 'svc\n');
  t.is(nsbox(t, ['exec', 'svc', 'true']).status, 0);

  const stats = nsbox(t, ['stats', '--no-stream', 'svc']);
  t.regex(stats.stdout, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS\n/);
  t.regex(stats.stdout, new RegExp(`${id.slice(0, 12)}\\s+svc\\s+\\d+\\.\\d\\d%\\s+[\\d.]+[KMG]?i?B / [\\d.]+[KMG]iB`));
  const json = JSON.parse(nsbox(t, ['stats', '--no-stream', '--format', 'json', 'svc']).stdout) as { Name: string; PIDs: string };
  t.is(json.Name, 'svc');
  t.true(Number(json.PIDs) >= 1);

  t.is(nsbox(t, ['exec', 'svc', 'sh', '-c', 'echo kept > /data.txt']).status, 0);
  t.is(nsbox(t, ['stop', '-t', '1', 'svc']).stdout, 'svc\n');
  t.regex(nsbox(t, ['ps', '-a']).stdout, /Exited \(137\) .*svc\n/, 'sleep ignores SIGTERM: killed after the timeout');
  t.regex(nsbox(t, ['exec', 'svc', 'true']).stderr, /is not running/);
  t.is(nsbox(t, ['start', 'svc']).stdout, 'svc\n');
  t.is(nsbox(t, ['exec', 'svc', 'cat', '/data.txt']).stdout, 'kept\n', 'start keeps the writable layer');
  t.is(nsbox(t, ['restart', '-t', '1', 'svc']).stdout, 'svc\n');
  t.is(nsbox(t, ['exec', 'svc', 'cat', '/data.txt']).stdout, 'kept\n', 'restart keeps it too');
  t.is(nsbox(t, ['logs', 'svc']).stdout, 'started\nstarted\nstarted\n', 'one log across the three runs');
  const ps = JSON.parse(nsbox(t, ['ps', '--format', 'json']).stdout.trim().split('\n')[0]!) as { Names: string; State: string };
  t.like(ps, { Names: 'svc', State: 'running' });
  t.is(nsbox(t, ['rm', '-f', 'svc']).status, 0);
  t.deepEqual(cgroupsOf(id), []);
});

/** Runs a quick bundle's `run` by itself: its exit code, or 99 when it would leave the command to the full CLI. */
function quickRun(t: { context: Ctx }, file: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  const script = `require(${JSON.stringify(file)}).run(${JSON.stringify(args)}).then((c) => process.exit(c ?? 99))`;
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', input: opts.input ?? '', env: { ...process.env, ...opts.env, NSBOX_ROOT: t.context.root }, timeout: 60_000 });
}

rtest('the quick exec (no engine): the same process as the full one, -e and -w too, exit codes, -i, signals forwarded; what it cannot do goes to the full CLI', async (t) => {
  const id = nsbox(t, ['run', '-d', '--name', 'quick', '-e', 'FROM_RUN=1', '-w', '/tmp', '-u', '1000:1000', '--memory', '64m', img(t), 'sleep', '1000']).stdout.trim();
  t.teardown(() => nsbox(t, ['rm', '-f', id]));
  t.regex(id, /^[0-9a-f]{64}$/);
  const probe = ['sh', '-c', 'id; pwd; env | sort; cat /proc/self/cgroup; grep -E "^(Cap|NoNewPrivs|Seccomp)" /proc/self/status; cat /proc/1/cmdline'];
  const quick = quickRun(t, quickExec, ['quick', ...probe]);
  t.is(quick.status, 0, `the quick bundle answered by itself: ${quick.stderr}`);
  // The full command's own process: forced through the engine by a flag the quick one leaves to it.
  const full = nsbox(t, ['exec', '--env-file', '/dev/null', 'quick', ...probe]);
  t.is(full.status, 0, full.stderr);
  t.is(quick.stdout, full.stdout, 'same user, cwd, env, cgroups, capabilities, seccomp and pid namespace');
  // -e and -w, by the quick one and by the full one.
  const flags = ['-e', 'A=1', '-e', 'FROM_RUN=2', '-e', 'PATH=/bin:/usr/bin', '-w', '/etc'];
  const quickFlags = quickRun(t, quickExec, [...flags, 'quick', ...probe]);
  t.is(quickFlags.status, 0, `the quick bundle answered -e and -w by itself: ${quickFlags.stderr}`);
  t.is(quickFlags.stdout, nsbox(t, ['exec', '--env-file', '/dev/null', ...flags, 'quick', ...probe]).stdout);
  t.regex(quickFlags.stdout, /\n\/etc\n(.*\n)*A=1\n(.*\n)*FROM_RUN=2\n(.*\n)*PATH=\/bin:\/usr\/bin\n/);
  t.is(quickRun(t, quickExec, ['-w', 'relative', 'quick', 'true']).status, 99, 'what the full command refuses is its to say');
  t.is(quickRun(t, quickExec, ['-w', '/nonexistent', 'quick', 'true']).status, 99);
  t.not(nsbox(t, ['exec', '-w', '/nonexistent', 'quick', 'true']).status, 0);
  t.regex(quick.stdout, /^uid=1000\b.*gid=1000\b/);
  t.regex(quick.stdout, /FROM_RUN=1/);
  for (const ref of [id, id.slice(0, 10), 'quick']) {
    const r = quickRun(t, quickExec, [ref, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    t.deepEqual([r.status, r.stdout, r.stderr], [3, 'out\n', 'err\n'], `by ${ref}`);
  }
  t.is(quickRun(t, quickExec, ['quick', 'sh', '-c', 'kill -9 $$']).status, 137);
  t.deepEqual([quickRun(t, quickExec, ['-i', 'quick', 'cat'], { input: 'piped\n' }).stdout], ['piped\n']);
  t.is(quickRun(t, quickExec, ['quick', 'cat'], { input: 'not read\n' }).stdout, '', 'without -i its stdin is at its end');
  // Left to the full command: a command not found (it explains it), a flag, a name nobody has.
  t.is(quickRun(t, quickExec, ['quick', '/bin/nope']).status, 99);
  t.is(nsbox(t, ['exec', 'quick', '/bin/nope']).status, 127);
  // -u uid[:gid] (root as 0): the ids and that user's capabilities, as the full command gives them; a name is the full command's.
  for (const user of ['0', 'root', '2000', '1000:1000', '3:4']) {
    const q = quickRun(t, quickExec, ['-u', user, 'quick', ...probe]);
    t.is(q.status, 0, `the quick bundle answered -u ${user} by itself: ${q.stderr}`);
    t.is(q.stdout, nsbox(t, ['exec', '--env-file', '/dev/null', '-u', user, 'quick', ...probe]).stdout, `-u ${user}`);
  }
  t.regex(quickRun(t, quickExec, ['-u', '0', 'quick', ...probe]).stdout, /^uid=0\b(.*\n)*CapEff:\t0*a80425fb\n/);
  t.regex(quickRun(t, quickExec, ['-u', '3:4', 'quick', ...probe]).stdout, /^uid=3\b.*gid=4\b(.*\n)*CapEff:\t0{16}\n/);
  t.is(quickRun(t, quickExec, ['-u', 'nobody', 'quick', 'true']).status, 99);
  t.is(quickRun(t, quickExec, ['nobody-has-this', 'true']).status, 99);

  // Our SIGTERM goes to the exec'd process, which decides what to do with it.
  const cli = spawn(process.execPath, [bin, 'exec', 'quick', 'sh', '-c', 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done'], { env: { ...process.env, NSBOX_ROOT: t.context.root }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const ready = new Promise<void>((resolve) =>
    cli.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    }),
  );
  const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
  await ready;
  cli.kill('SIGTERM');
  t.is(await exited, 7);
  t.is(out, 'ready\ngot TERM\n');
});

/** A foreground `nsbox run` (spawned, its output read); `ready` resolves once `marker` was printed. */
function foreground(t: { context: Ctx }, args: string[], marker: string) {
  const cli = spawn(process.execPath, [bin, 'run', ...args], { env: { ...process.env, NSBOX_ROOT: t.context.root }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  cli.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve) =>
    cli.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(marker)) resolve();
    }),
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => cli.on('close', (code, signal) => resolve({ code, signal })));
  return { cli, ready, exited, output: () => out, errors: () => err };
}

/** What a container leaves in the store and the kernel: its record, directory, owner notes, cgroups. */
function leftOf(t: { context: Ctx }, id: string): string[] {
  const owners = join(t.context.root, 'owners');
  const notes = existsSync(owners) ? readdirSync(owners, { recursive: true }).map(String).filter((f) => f.includes(id)) : [];
  return [...(existsSync(join(t.context.root, 'containers', id)) ? [`containers/${id}`] : []), ...notes.map((n) => `owners/${n}`), ...cgroupsOf(id)];
}

rtest('run --rm in the foreground without a shim: ps, inspect, exec and stop from another shell; signals forwarded; kill -9 of the CLI leaves nothing', async (t) => {
  const loop = 'trap "echo got TERM; exit 9" TERM; echo ready; while :; do sleep 0.05; done';
  const a = foreground(t, ['--rm', '--name', 'fg', img(t), 'sh', '-c', loop], 'ready');
  await a.ready;
  const [r] = JSON.parse(nsbox(t, ['inspect', 'fg']).stdout) as Array<{ id: string; state: string; supervisor: { kind: string; pid: number } }>;
  t.like(r, { state: 'running', supervisor: { kind: 'process' } });
  const id = r!.id;
  t.false(existsSync(join(t.context.root, 'containers', id, 'shim', 'shim.pid')), 'no shim runs it');
  t.regex(nsbox(t, ['ps']).stdout, new RegExp(`${id.slice(0, 12)}\\s+.*Up .*\\s+fg\\n`));
  const ex = nsbox(t, ['exec', 'fg', 'sh', '-c', 'echo in $(cat /proc/1/cmdline | tr "\\0" " ")']);
  t.is(ex.stdout, `in sh -c ${loop}\n`, ex.stderr);
  a.cli.kill('SIGTERM');
  t.deepEqual(await a.exited, { code: 9, signal: null }, a.errors());
  t.is(a.output(), 'ready\ngot TERM\n', 'our SIGTERM reached the container');
  t.deepEqual(leftOf(t, id), [], 'removed before the CLI returned');

  // stop from another shell: the init of a pid namespace ignores SIGTERM without a handler, so the stop's SIGKILL ends it.
  const b = foreground(t, ['--rm', '--name', 'fg2', img(t), 'sh', '-c', 'echo ready; exec sleep 100'], 'ready');
  await b.ready;
  const id2 = (JSON.parse(nsbox(t, ['inspect', 'fg2']).stdout) as Array<{ id: string }>)[0]!.id;
  t.is(nsbox(t, ['stop', '-t', '1', 'fg2']).status, 0);
  t.deepEqual(await b.exited, { code: 137, signal: null });
  t.deepEqual(leftOf(t, id2), []);

  // kill -9 of the CLI: its container dies with it (PDEATHSIG); the next command removes what is left.
  const c = foreground(t, ['--rm', '--name', 'fg3', img(t), 'sh', '-c', 'echo ready; exec sleep 100'], 'ready');
  await c.ready;
  const [r3] = JSON.parse(nsbox(t, ['inspect', 'fg3']).stdout) as Array<{ id: string; supervisor: { pid: number } }>;
  c.cli.kill('SIGKILL');
  await c.exited;
  await until('the container to die with its CLI', () => !existsSync(`/proc/${r3!.supervisor.pid}`));
  t.is(nsbox(t, ['ps', '-aq']).status, 0);
  t.deepEqual(leftOf(t, r3!.id), [], 'ps removed what the killed CLI left');
  t.is(nsbox(t, ['run', '--rm', '--name', 'fg3', img(t), 'true']).status, 0, 'its name is free');
});

rtest('rm -f of a foreground run --rm container from another shell: both finish cleanly whichever removal comes first (full and quick run)', async (t) => {
  // The first round keeps the quick run's plan, the later ones run from it.
  for (let round = 0; round < 6; round++) {
    const a = foreground(t, ['--rm', '--name', 'fgrm', img(t), 'sh', '-c', 'echo ready; exec sleep 100'], 'ready');
    await a.ready;
    const id = (JSON.parse(nsbox(t, ['inspect', 'fgrm']).stdout) as Array<{ id: string }>)[0]!.id;
    const rm = nsbox(t, ['rm', '-f', 'fgrm']);
    t.deepEqual([rm.status, rm.stdout, rm.stderr], [0, 'fgrm\n', ''], `round ${round}: rm -f`);
    t.deepEqual(await a.exited, { code: 137, signal: null }, `round ${round}: ${a.errors()}`);
    t.is(a.errors(), '', `round ${round}: the run's own removal found it gone`);
    t.deepEqual(leftOf(t, id), [], `round ${round}`);
  }
});

rtest('the quick run --rm (no engine, from the plan the full one kept): the same container, exit code, removal leaving nothing, signals; what it cannot do goes to the full CLI', async (t) => {
  const probe = 'hostname >&2; id; pwd; env | grep -v HOSTNAME | sort; cat /proc/self/cgroup; grep -E "^(Cap|NoNewPrivs|Seccomp)" /proc/self/status; cat /proc/1/cmdline; echo; mount | sed "s/[0-9a-f]\\{64\\}/ID/g"; ls /dev; ip link | grep -c mtu';
  const args = ['--rm', '-e', 'A=1', '-w', '/tmp', '-u', '1000:1000', '--name', 'qr', img(t), 'sh', '-c', probe];
  // What earlier tests left (exited containers without --rm) is theirs: only new containers count.
  const ids = () => (existsSync(join(t.context.root, 'containers')) ? readdirSync(join(t.context.root, 'containers')) : []).filter((f) => /^[0-9a-f]{64}$/.test(f));
  const before = ids();
  t.is(quickRun(t, quickRunBundle, args).status, 99, 'no plan yet: the full CLI runs it');
  // Why a plan is not kept, or not used, is told on stderr (NSBOX_DEBUG is not part of a plan's key).
  const debug = { NSBOX_DEBUG: 'run-plan' };
  const plansDir = join(t.context.root, 'run-plans');
  const plans = () => (existsSync(plansDir) ? readdirSync(plansDir) : []);
  const plansBefore = plans();
  const full = nsbox(t, ['run', ...args], undefined, debug);
  t.is(full.status, 0, full.stderr);
  const quick = quickRun(t, quickRunBundle, args, { env: debug });
  t.is(quick.status, 0, `the quick bundle ran it by itself, from the plan the full run kept: ${quick.stderr} (the full run's stderr: ${full.stderr})`);
  t.is(quick.stdout, full.stdout, 'same user, cwd, env, cgroups, capabilities, seccomp, mounts, devices, network');
  t.regex(quick.stdout, /^uid=1000\b(.*\n)*\/tmp\n(.*\n)*A=1\n(.*\n)*Seccomp:\t2\n/);
  const id12 = quick.stderr.trim();
  t.regex(id12, /^[0-9a-f]{12}$/);
  t.not(id12, full.stderr.trim().split('\n').pop(), 'a container of its own');
  t.deepEqual(leftOf(t, id12), [], 'its record, directory, note and cgroups removed');
  t.false(nsbox(t, ['ps', '-aq']).stdout.includes(id12));
  // Its name is free: the quick removal leaves the index's entry, which names no record (so it does
  // not count), and the next quick create drops it.
  const namesOf = () => (JSON.parse(readFileSync(join(t.context.root, 'containers', 'names.json'), 'utf8')) as { names: Record<string, string> }).names;
  const stale = namesOf().qr;
  t.true(stale === undefined || !existsSync(join(t.context.root, 'containers', stale)), 'its name is free');
  const again = quickRun(t, quickRunBundle, args);
  t.is(again.status, 0, `the name taken again: ${again.stderr}`);
  // The plan holds nothing of the name: the full run of the same request under another name keeps the same one.
  const [planFile] = plans().filter((f) => !plansBefore.includes(f));
  t.truthy(planFile, 'the full run kept one plan');
  const planText = readFileSync(join(plansDir, planFile!), 'utf8');
  rmSync(join(plansDir, planFile!));
  const renamed = nsbox(t, ['run', ...args.map((a) => (a === 'qr' ? 'qr-other' : a))], undefined, debug);
  t.is(renamed.status, 0, renamed.stderr);
  t.is(readFileSync(join(plansDir, planFile!), 'utf8'), planText);

  // Exit codes, and signals forwarded.
  const exit3 = ['--rm', img(t), 'sh', '-c', 'echo out; echo err >&2; exit 3'];
  t.is(nsbox(t, ['run', ...exit3]).status, 3);
  t.deepEqual(((r) => [r.status, r.stdout, r.stderr])(quickRun(t, quickRunBundle, exit3)), [3, 'out\n', 'err\n']);
  t.false('qr' in namesOf(), 'a stale entry is dropped by the next quick create');
  const loop = ['--rm', img(t), 'sh', '-c', 'trap "echo got TERM; exit 9" TERM; echo ready; while :; do sleep 0.05; done'];
  const a = foreground(t, loop, 'ready');
  await a.ready;
  // The full CLI forwards signals once its session is set up (the record says running by then).
  await until('the full CLI to mark it running', () => /Up /.test(nsbox(t, ['ps']).stdout));
  a.cli.kill('SIGTERM');
  t.is((await a.exited).code, 9);
  const script = `require(${JSON.stringify(quickRunBundle)}).run(${JSON.stringify(loop)}).then((c) => process.exit(c ?? 99))`;
  const q = spawn(process.execPath, ['-e', script], { env: { ...process.env, NSBOX_ROOT: t.context.root }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve) => q.stdout.on('data', (d: Buffer) => (out += d.toString()).includes('ready') && resolve()));
  t.regex(nsbox(t, ['ps']).stdout, /Up /, 'ps from another shell sees it running');
  q.kill('SIGTERM');
  t.is(await new Promise<number | null>((resolve) => q.on('close', (code) => resolve(code))), 9);
  t.is(out, 'ready\ngot TERM\n');
  t.deepEqual(ids().filter((id) => !before.includes(id)), [], 'nothing left of them');

  // Left to the full CLI, with nothing started: flags it does not take, -d, no --rm, a name taken, another image under the tag.
  for (const other of [['--rm', '--memory', '64m', img(t), 'true'], ['--rm', '-d', img(t), 'true'], [img(t), 'true'], ['--rm', '-t', img(t), 'true']]) {
    t.is(quickRun(t, quickRunBundle, other).status, 99, other.join(' '));
  }
  t.is(nsbox(t, ['run', '--rm', '--name', 'qr', img(t), 'true']).status, 0);
  const held = nsbox(t, ['run', '-d', '--name', 'qr', img(t), 'sleep', '100']).stdout.trim();
  t.teardown(() => nsbox(t, ['rm', '-f', held]));
  t.is(quickRun(t, quickRunBundle, ['--rm', '--name', 'qr', img(t), 'true']).status, 99, 'a name taken: the full command says so');
  t.is(nsbox(t, ['rm', '-f', held]).status, 0);
  t.is(nsbox(t, ['tag', img(t), 'qrtag:1']).status, 0);
  t.is(nsbox(t, ['run', '--rm', 'qrtag:1', 'true']).status, 0);
  t.is(quickRun(t, quickRunBundle, ['--rm', 'qrtag:1', 'true']).status, 0);
  t.is(nsbox(t, ['pull', '-q', img(t, 'layered:1')]).status, 0);
  t.is(nsbox(t, ['tag', img(t, 'layered:1'), 'qrtag:1']).status, 0);
  t.is(quickRun(t, quickRunBundle, ['--rm', 'qrtag:1', 'true']).status, 99, 'the tag names another image now');
  t.is(nsbox(t, ['rmi', 'qrtag:1']).status, 0);
  t.deepEqual(ids().filter((id) => !before.includes(id)), []);
});

rtest('start -a, run -d --rm, logs --since, exit codes through start', async (t) => {
  t.is(nsbox(t, ['run', '--name', 'once', img(t), 'sh', '-c', 'echo out; echo err >&2; exit 2']).status, 2);
  const again = nsbox(t, ['start', '-a', 'once']);
  t.is(again.stdout, 'out\n');
  t.is(again.stderr, 'err\n');
  t.is(again.status, 2, 'start -a exits with the container\'s code');
  t.is(nsbox(t, ['logs', 'once']).stdout, 'out\nout\n');
  t.is(nsbox(t, ['logs', '--since', '1h', 'once']).stdout, 'out\nout\n');
  t.is(nsbox(t, ['logs', '--since', String(Math.floor(Date.now() / 1000) + 60), 'once']).stdout, '');
  t.is(nsbox(t, ['rm', 'once']).status, 0);

  const id = nsbox(t, ['run', '-d', '--rm', img(t), 'sh', '-c', 'sleep 0.3']).stdout.trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  t.teardown(() => nsbox(t, ['rm', '-f', id]));
  await until('its shim to remove it once it exited', () => !nsbox(t, ['ps', '-aq', '--no-trunc']).stdout.includes(id));
  t.false(existsSync(join(t.context.root, 'containers', id)));
  t.deepEqual(cgroupsOf(id), []);
  const stopped = nsbox(t, ['run', '-d', '--rm', img(t), 'sleep', '100']).stdout.trim();
  t.teardown(() => nsbox(t, ['rm', '-f', stopped]));
  t.is(nsbox(t, ['stop', '-t', '1', stopped]).status, 0, 'stop of an --rm container succeeds, though it removes itself');
  await until('the stopped --rm container to be gone', () => !nsbox(t, ['ps', '-aq', '--no-trunc']).stdout.includes(stopped));
  const both = nsbox(t, ['run', '-d', '--rm', '--restart', 'always', img(t), 'true']);
  t.is(both.status, 125);
  t.regex(both.stderr, /cannot both remove and restart/);
});

rtest('two CLIs racing for one name: one wins, the other gets a clear error', async (t) => {
  const { spawn } = await import('node:child_process');
  const runOne = () => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [bin, 'run', '-d', '--name', 'race', img(t), 'sleep', '100'], { env: { ...process.env, NSBOX_ROOT: t.context.root } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d));
    c.stderr.on('data', (d: Buffer) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  const results = await Promise.all([runOne(), runOne()]);
  t.teardown(() => nsbox(t, ['rm', '-f', 'race']));
  const won = results.filter((r) => r.code === 0);
  const lost = results.filter((r) => r.code !== 0);
  t.is(won.length, 1);
  t.is(lost.length, 1);
  t.is(lost[0]!.code, 125);
  t.regex(lost[0]!.stderr, /Conflict\. The container name "\/race" is already in use by container "[0-9a-f]{64}"/);
  t.is(nsbox(t, ['ps', '-q', '--no-trunc']).stdout.trim(), won[0]!.stdout.trim());
  t.is(nsbox(t, ['rm', '-f', 'race']).status, 0);
});

rtest('kill -9 of the CLI mid run -d, and of a shim: the state stays consistent and rm -f cleans up', async (t) => {
  const { spawn } = await import('node:child_process');
  t.is(nsbox(t, ['pull', '-q', img(t)]).status, 0);
  // Killed at several points of run -d (before, during and after the shim's start).
  for (const delay of [200, 350, 500, 650, 800, 1000, 1300]) {
    const c = spawn(process.execPath, [bin, 'run', '-d', '--name', `k${delay}`, img(t), 'sleep', '100'], { env: { ...process.env, NSBOX_ROOT: t.context.root }, stdio: 'ignore' });
    const closed = new Promise((r) => c.once('close', r));
    await sleep(delay);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await closed;
  }
  const listed = nsbox(t, ['ps', '-a', '--format', 'json']);
  t.is(listed.status, 0, listed.stderr);
  for (const line of listed.stdout.trim().split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as { Names: string; State: string };
    if (!/^k\d+$/.test(r.Names)) continue;
    t.true(['created', 'running'].includes(r.State), `${r.Names}: ${r.State}`);
  }
  const ids = nsbox(t, ['ps', '-aq', '--no-trunc']).stdout.trim().split('\n').filter(Boolean);
  t.true(ids.length >= 1, 'at least the runs killed after their create are recorded');
  for (const id of ids) t.is(nsbox(t, ['rm', '-f', id]).status, 0);
  for (const id of ids) t.deepEqual(cgroupsOf(id), [], `${id.slice(0, 12)}: no cgroup left`);
  t.is(nsbox(t, ['ps', '-aq']).stdout, '');

  // A shim killed -9 leaves its container running without a supervisor: the record says dead,
  // and rm -f kills what is left through the container's cgroup.
  const id = nsbox(t, ['run', '-d', img(t), 'sleep', '100']).stdout.trim();
  t.teardown(() => nsbox(t, ['rm', '-f', id]));
  const inspect = JSON.parse(nsbox(t, ['inspect', id]).stdout) as Array<{ supervisor: { pid: number }; pid: number }>;
  const { supervisor, pid } = inspect[0]!;
  process.kill(supervisor.pid, 'SIGKILL');
  const ps = await until('ps -a to show it Dead', () => (s => /Dead/.test(s) && s)(nsbox(t, ['ps', '-a']).stdout));
  t.regex(ps, new RegExp(`${id.slice(0, 12)}.*Dead`));
  t.true(existsSync(`/proc/${pid}`), 'its container still runs');
  t.is(nsbox(t, ['rm', '-f', id]).status, 0);
  await until('rm -f to kill the orphaned container', () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z');
  t.deepEqual(cgroupsOf(id), []);
});

/** `Name: value` lines of a /proc/PID/status. */
const procStatus = (text: string) => Object.fromEntries([...text.matchAll(/^(\w+):\s*(.*)$/gm)].map((m) => [m[1]!, m[2]!]));

rtest('exec --privileged: every capability, no seccomp filter, no no_new_privs; the container keeps its own', (t) => {
  const id = nsbox(t, ['run', '-d', img(t), 'sleep', '1000']).stdout.trim();
  t.teardown(() => nsbox(t, ['rm', '-f', id]));
  const statusOf = (flags: string[], file = '/proc/self/status') => {
    const r = nsbox(t, ['exec', ...flags, id, 'cat', file]);
    t.is(r.status, 0, r.stderr);
    return procStatus(r.stdout);
  };
  const plain = statusOf([]);
  t.like(plain, { CapEff: '00000000a80425fb', CapBnd: '00000000a80425fb', Seccomp: '2', NoNewPrivs: '1' }, "docker's default set, its seccomp profile");
  // Every capability this host gives root (some VMs hold one back, CAP_SYS_RESOURCE here and there).
  const all = procStatus(readFileSync('/proc/self/status', 'utf8'))['CapPrm'];
  const privileged = statusOf(['--privileged']);
  t.like(privileged, { CapEff: all, CapPrm: all, CapBnd: all, Seccomp: '0', NoNewPrivs: '0' });
  t.not(privileged['CapEff'], plain['CapEff']);
  t.like(statusOf(['--privileged'], '/proc/1/status'), { CapEff: '00000000a80425fb', Seccomp: '2' }, 'the container\'s init is as it was');
  t.like(statusOf([]), { CapEff: '00000000a80425fb', Seccomp: '2' }, 'and so is the next exec');
});

rtest('rmi -f of an image a container uses: its names go, the image stays dangling under the container', (t) => {
  // An image of its own (the busybox one has a twin from the load above: one id, two manifests),
  // whose busybox is three layers down.
  const image = img(t, 'layered:1');
  const run = nsbox(t, ['run', '-d', '--name', 'user', '--entrypoint', 'sleep', image, '1000']);
  const id = run.stdout.trim();
  t.regex(id, /^[0-9a-f]{64}$/, run.stderr);
  t.teardown(() => nsbox(t, ['rm', '-f', id]));
  const imageId = nsbox(t, ['images', '-q', image]).stdout.trim();
  t.regex(imageId, /^[0-9a-f]{12}$/);
  const refused = nsbox(t, ['rmi', image]);
  t.is(refused.status, 1);
  t.regex(refused.stderr, new RegExp(`image is in use by container ${id.slice(0, 12)} \\(running\\).*use -f`));
  const byId = nsbox(t, ['rmi', '-f', imageId]);
  t.is(byId.status, 1);
  t.regex(byId.stderr, new RegExp(`conflict: unable to delete ${imageId} \\(cannot be forced\\) - image is being used by running container ${id.slice(0, 12)}`));

  const layers = () => readdirSync(join(t.context.root, 'layers')).sort();
  const before = layers();
  const rmi = nsbox(t, ['rmi', '-f', image]);
  t.is(rmi.status, 0, rmi.stderr);
  t.is(rmi.stdout, `Untagged: ${image}\n`, 'untagged, nothing deleted');
  t.deepEqual(layers(), before, 'no layer was freed');
  t.regex(nsbox(t, ['ps']).stdout, new RegExp(`${id.slice(0, 12)}\\s+.*Up .*\\s+user\\n`));
  const read = nsbox(t, ['exec', 'user', 'sh', '-c', 'cat /bin/busybox >/dev/null && echo read']);
  t.is(read.stdout, 'read\n', `its lower layers are still there: ${read.stderr}`);
  t.regex(nsbox(t, ['images']).stdout, new RegExp(`\\n<none>\\s+<none>\\s+${imageId}\\s`), 'the image is dangling');

  t.is(nsbox(t, ['stop', '-t', '1', 'user']).stdout, 'user\n');
  const stopped = nsbox(t, ['rmi', '-f', imageId]);
  t.is(stopped.status, 1);
  t.regex(stopped.stderr, new RegExp(`image is being used by stopped container ${id.slice(0, 12)}`));
  t.is(nsbox(t, ['start', 'user']).stdout, 'user\n', 'it starts again from the untagged image');
  t.is(nsbox(t, ['exec', 'user', 'sh', '-c', 'cat /bin/busybox >/dev/null && echo read']).stdout, 'read\n');

  t.is(nsbox(t, ['rm', '-f', 'user']).status, 0);
  const gone = nsbox(t, ['rmi', imageId]);
  t.is(gone.status, 0, gone.stderr);
  t.regex(gone.stdout, /^Deleted: sha256:[0-9a-f]{64}\n/, 'with its last container gone, removed by id');
  t.false(nsbox(t, ['images', '-q']).stdout.includes(imageId));
});

rtest('system prune: dangling images go, named ones stay; with -a every image no container uses goes', (t) => {
  const tar = join(t.context.root, 'rootfs.tar');
  t.is(spawnSync('tar', ['-C', rootfs(), '-cf', tar, '.']).status, 0);
  const dangling = nsbox(t, ['import', '-m', 'one', tar]).stdout.trim();
  const named = nsbox(t, ['import', '-m', 'two', tar, 'unused:1']).stdout.trim();
  const used = nsbox(t, ['import', '-m', 'three', '-c', 'CMD ["true"]', tar, 'used:1']).stdout.trim();
  for (const id of [dangling, named, used]) t.regex(id, /^sha256:[0-9a-f]{64}$/);
  t.is(nsbox(t, ['run', '--name', 'keeper', 'used:1']).status, 0);
  t.teardown(() => nsbox(t, ['rm', '-f', 'keeper']));
  const ids = () => nsbox(t, ['images', '-q', '--no-trunc']).stdout;

  // A container that exited is removed too: keep one through a running one.
  const run = nsbox(t, ['run', '-d', '--name', 'keeper2', 'used:1', 'sleep', '1000']);
  t.is(run.status, 0, run.stderr);
  t.teardown(() => nsbox(t, ['rm', '-f', 'keeper2']));
  const prune = nsbox(t, ['system', 'prune', '-f']);
  t.is(prune.status, 0, prune.stderr);
  t.regex(prune.stdout, new RegExp(`Deleted Images:\\n(?:.*\\n)*?deleted: ${dangling}\\n`));
  t.regex(prune.stdout, /Total reclaimed space: \d+(\.\d+)?[kM]?B\n$/);
  t.false(ids().includes(dangling));
  t.true(ids().includes(named));

  const all = nsbox(t, ['system', 'prune', '-a', '-f']);
  t.is(all.status, 0, all.stderr);
  t.regex(all.stdout, /untagged: unused:1\n/);
  t.false(ids().includes(named));
  t.true(ids().includes(used), 'the image of a running container stays');
  t.is(nsbox(t, ['exec', 'keeper2', 'echo', 'still']).stdout, 'still\n');
});

rtest('volumes: a named one outlives its containers, anonymous ones (-v /path, an image VOLUME) go with rm -v and --rm; volume ls, inspect, rm, prune', (t) => {
  const tar = join(t.context.root, 'vol-rootfs.tar');
  t.is(spawnSync('tar', ['-C', rootfs(), '-cf', tar, '.']).status, 0);
  t.is(nsbox(t, ['import', '-c', 'VOLUME /cache', tar, 'withvol:1']).status, 0);
  const volumes = () => nsbox(t, ['volume', 'ls', '-q']).stdout.trim().split('\n').filter(Boolean);
  const before = volumes();
  const w = nsbox(t, ['run', '--name', 'writer', '-v', 'shared:/data', '-v', '/scratch', 'withvol:1', 'sh', '-c', 'echo kept > /data/f; touch /scratch/x /cache/y; grep -c " /data \\| /scratch \\| /cache " /proc/mounts']);
  t.is(w.status, 0, w.stderr);
  t.is(w.stdout, '3\n', 'three volumes mounted');
  t.teardown(() => {
    nsbox(t, ['rm', '-f', '-v', 'writer', 'holder']);
    nsbox(t, ['volume', 'rm', '-f', 'shared']);
  });
  const made = volumes().filter((v) => !before.includes(v));
  t.is(made.length, 3);
  t.true(made.includes('shared'));
  const anonymous = made.filter((v) => v !== 'shared');
  for (const v of anonymous) t.regex(v, /^[0-9a-f]{64}$/);

  const r = nsbox(t, ['run', '--rm', '-v', 'shared:/d:ro', 'withvol:1', 'sh', '-c', 'cat /d/f; touch /d/no']);
  t.is(r.stdout, 'kept\n', 'the named volume is shared');
  t.regex(r.stderr, /Read-only file system/);
  t.deepEqual(volumes().filter((v) => !before.includes(v)).sort(), made.sort(), '--rm took its own anonymous /cache volume along');

  const refused = nsbox(t, ['volume', 'rm', 'shared']);
  t.is(refused.status, 1);
  t.regex(refused.stderr, /volume is in use/);
  const [info] = JSON.parse(nsbox(t, ['volume', 'inspect', 'shared']).stdout) as Array<{ Name: string; Mountpoint: string }>;
  t.is(info!.Name, 'shared');
  t.is(readFileSync(join(info!.Mountpoint, 'f'), 'utf8'), 'kept\n');

  t.is(nsbox(t, ['rm', '-v', 'writer']).stdout, 'writer\n');
  t.deepEqual(volumes().filter((v) => !before.includes(v)), ['shared'], 'rm -v: the anonymous ones went, the named one stayed');
  t.is(nsbox(t, ['run', '--rm', '-v', 'shared:/d', 'withvol:1', 'cat', '/d/f']).stdout, 'kept\n');

  // Without -v the anonymous volume stays, unused, until a prune.
  t.is(nsbox(t, ['run', '--name', 'holder', 'withvol:1', 'true']).status, 0);
  t.is(nsbox(t, ['rm', 'holder']).status, 0);
  const leftover = volumes().filter((v) => !before.includes(v) && v !== 'shared');
  t.is(leftover.length, 1);
  const prune = nsbox(t, ['volume', 'prune', '-f']);
  t.regex(prune.stdout, new RegExp(`Deleted Volumes:\\n${leftover[0]}\\n`));
  t.true(volumes().includes('shared'), 'prune without -a keeps named volumes');
  t.is(nsbox(t, ['volume', 'rm', 'shared']).stdout, 'shared\n');
  t.false(volumes().includes('shared'));

  // Copy-up: a new volume over /etc starts with the image's /etc; with nocopy it starts empty.
  t.is(nsbox(t, ['run', '--rm', '-v', 'etcv:/etc', 'withvol:1', 'sh', '-c', 'grep -c ^root: /etc/passwd']).stdout, '1\n');
  t.is(nsbox(t, ['run', '--rm', '-v', 'emptyv:/etc:nocopy', 'withvol:1', 'ls', '-A', '/etc']).stdout, '');
  t.is(nsbox(t, ['volume', 'rm', 'etcv', 'emptyv']).status, 0);

  const missing = join(t.context.root, 'not-yet', 'there');
  t.is(nsbox(t, ['run', '--rm', '-v', `${missing}:/m`, 'withvol:1', 'sh', '-c', 'echo made > /m/f']).status, 0);
  t.is(readFileSync(join(missing, 'f'), 'utf8'), 'made\n', 'a missing host directory of -v is made, as docker makes it');
});

rtest('ps lists running, paused, exited and killed containers as the engine has them, without loading it', async (t) => {
  const { Engine } = await import('../../lib/engine/index.js');
  const { readContainerList } = await import('../../lib/engine/container-list.js');
  const run = (...args: string[]) => {
    const r = nsbox(t, ['run', '-d', ...args]);
    t.is(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const ids = [run('--name', 'ls-up', img(t), 'sleep', '1000'), run('--name', 'ls-frozen', img(t), 'sleep', '1000'), run('--name', 'ls-done', img(t), 'sh', '-c', 'exit 3'), run('--name', 'ls-killed', img(t), 'sleep', '1000')];
  t.is(nsbox(t, ['pause', 'ls-frozen']).status, 0);
  t.is(nsbox(t, ['kill', 'ls-killed']).status, 0);
  const engine = await Engine.open({ root: t.context.root, repair: false });
  // Written back by the engine's reads: from here on, ps answers without it.
  await until('ls-done and ls-killed to have exited', async () => (await Promise.all(['ls-done', 'ls-killed'].map((n) => engine.get(n)))).every((r) => r.state === 'exited'));
  t.truthy(await readContainerList({ root: t.context.root, all: true }), 'every record in order: ps reads the store alone');
  const ps = nsbox(t, ['ps', '-a', '--no-trunc', '--format', 'json']);
  t.is(ps.status, 0, ps.stderr);
  const listed = ps.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ID: string; Names: string; State: string; Status: string; ExitCode: number; Image: string; CreatedAt: string });
  const want = (await engine.list({ all: true })).map((r) => ({ ID: r.id, Names: r.name, State: r.state, CreatedAt: r.created }));
  t.deepEqual(listed.map(({ ID, Names, State, CreatedAt }) => ({ ID, Names, State, CreatedAt })), want);
  const byName = new Map(listed.map((l) => [l.Names, l]));
  t.regex(byName.get('ls-up')!.Status, /^Up /);
  t.regex(byName.get('ls-frozen')!.Status, /^Up .* \(Paused\)$/);
  t.like(byName.get('ls-done'), { State: 'exited', ExitCode: 3 });
  t.regex(byName.get('ls-done')!.Status, /^Exited \(3\) .* ago$/);
  t.like(byName.get('ls-killed'), { State: 'exited', ExitCode: 137 });
  t.is(byName.get('ls-up')!.Image, `${t.context.reg.host}/busybox:1`);
  t.regex(nsbox(t, ['ps']).stdout, /Up .* \(Paused\)\s+ls-frozen\n/);
  t.is(nsbox(t, ['rm', '-f', ...ids]).status, 0);
});
