/**
 * The docker CLI 28 against `nsbox serve`, unchanged: the session of issue 7 (version, pull, images,
 * run --rm / -d / -it, ps -a, exec, exec -it, logs -f, stop, start, restart, rm -f, rmi) with exit
 * codes propagated, images from a real registry on 127.0.0.1, terminals through script(1).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { rootfs, skipIf } from './_helpers.js';
import { startImageRegistry, type ImageRegistry } from '../fixtures/registry.js';
import { Engine } from '../../lib/engine/engine.js';
import { apiUnavailable, bin, cleanup, docker, dockerAsync, request, startServe, throughPty, type Serve } from './api-fixture.js';
import { until } from '../fixtures/until.js';

interface Ctx extends ImageRegistry {
  serve: Serve;
}
const test = anyTest as TestFn<Ctx>;
const reason = apiUnavailable({ docker: true });
const rtest = skipIf(reason, test.serial);

test.before(async (t) => {
  if (reason) return;
  Object.assign(t.context, await startImageRegistry(rootfs()));
  t.context.serve = await startServe();
});
test.after.always(async (t) => {
  await cleanup(t.context.serve);
  await t.context.stop?.();
});

const img = (t: { context: Ctx }) => `${t.context.reg.host}/busybox:1`;
// script(1) echoes what reaches the terminal and the shell asks for the cursor position: not ours to check
const screen = (s: string) => s.replace(/\r|\^@|\0|\x1b\[6n/g, '');

rtest('version, pull, images', (t) => {
  const v = docker(t.context.serve, ['version']);
  t.is(v.status, 0, v.stderr);
  t.regex(v.stdout, /Server: nsbox\n Engine:\n  Version:\s+\d+\.\d+\.\d+\n  API version:\s+1\.41 \(minimum version 1\.12\)/);
  const pull = docker(t.context.serve, ['pull', img(t)]);
  t.is(pull.status, 0, pull.stderr);
  t.regex(pull.stdout, /^1: Pulling from busybox\n/);
  t.regex(pull.stdout, /[0-9a-f]{12}: Pull complete\n/);
  t.regex(pull.stdout, /Digest: sha256:[0-9a-f]{64}\nStatus: Downloaded newer image for 127\.0\.0\.1:\d+\/busybox:1\n/);
  const again = docker(t.context.serve, ['pull', img(t)]);
  t.regex(again.stdout, /Status: Image is up to date for /);
  const images = docker(t.context.serve, ['images']);
  t.regex(images.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/);
  t.regex(images.stdout, new RegExp(`${t.context.reg.host}/busybox\\s+1\\s+[0-9a-f]{12}\\s+.+ ago\\s+[\\d.]+[kM]B\\n`));
  const missing = docker(t.context.serve, ['pull', `${t.context.reg.host}/nope:1`]);
  t.is(missing.status, 1);
  t.regex(missing.stderr, /Error response from daemon: /);
});

rtest('run --rm: output, stderr, exit code; run of a missing image pulls it first', (t) => {
  const r = docker(t.context.serve, ['run', '--rm', img(t), 'sh', '-c', 'echo hi; echo oops >&2; exit 3']);
  t.is(r.stdout, 'hi\n');
  t.is(r.stderr, 'oops\n');
  t.is(r.status, 3);
  const layered = `${t.context.reg.host}/layered:1`;
  const p = docker(t.context.serve, ['run', '--rm', layered]);
  t.is(p.status, 0, p.stderr);
  t.regex(p.stderr, /Unable to find image '127\.0\.0\.1:\d+\/layered:1' locally/);
  t.is(p.stdout.split('\n').filter((l) => l === 'kept').length, 1, 'the image\'s entrypoint and cmd ran after the pull');
  t.is(docker(t.context.serve, ['run', '--rm', '-e', 'A=1', '-w', '/tmp', '--read-only', '--network', 'none', '-u', '1000', img(t), 'sh', '-c', 'echo $A $(pwd) $(id -u)']).stdout, '1 /tmp 1000\n');
  t.is(docker(t.context.serve, ['run', '--rm', img(t), '/bin/nope']).status, 127);
  t.is(docker(t.context.serve, ['run', '--rm', img(t), '/etc/passwd']).status, 126, 'a command that cannot be invoked, as nsbox run says');
  t.is(docker(t.context.serve, ['ps', '-aq']).stdout, '', '--rm left no container');
});

rtest('run -d --name, ps -a, exec, logs -f, stop, start, restart, rm -f', async (t) => {
  const s = t.context.serve;
  const run = docker(s, ['run', '-d', '--name', 'web', img(t), 'sh', '-c', 'trap "echo bye; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done']);
  t.is(run.status, 0, run.stderr);
  const id = run.stdout.trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  t.teardown(() => void docker(s, ['rm', '-f', 'web']));
  await until('two ticks in the log', () => docker(s, ['logs', 'web']).stdout.includes('tick 1'));
  t.regex(docker(s, ['ps', '-a']).stdout, new RegExp(`^CONTAINER ID\\s+IMAGE\\s+COMMAND\\s+CREATED\\s+STATUS\\s+PORTS\\s+NAMES\\n${id.slice(0, 12)}\\s+${img(t)}\\s+"sh -c trap .*Up .*\\s+web\\n`));
  const exec = docker(s, ['exec', 'web', 'sh', '-c', 'echo in $(hostname); exit 4']);
  t.is(exec.stdout, `in ${id.slice(0, 12)}\n`);
  t.is(exec.status, 4);
  t.is(docker(s, ['exec', '-i', 'web', 'cat'], { input: 'piped\n' }).stdout, 'piped\n');
  t.is(docker(s, ['exec', '-d', 'web', 'touch', '/detached']).status, 0);
  t.is(await until('the detached exec to touch /detached', () => docker(s, ['exec', 'web', 'ls', '/detached']).stdout || false), '/detached\n');
  const seccomp = (flags: string[]) => /^Seccomp:\s*(\d)$/m.exec(docker(s, ['exec', ...flags, 'web', 'cat', '/proc/self/status']).stdout)?.[1];
  t.is(seccomp([]), '2');
  t.is(seccomp(['--privileged']), '0', 'exec --privileged: no seccomp filter');
  const pty = throughPty(s, `docker exec -it web sh -c 'test -t 0 && echo TTY; exit 5'`);
  t.is(screen(pty.stdout), 'TTY\n');
  t.is(pty.status, 5);
  const typed = throughPty(s, 'docker exec -it web sh', 'echo typed""here; exit 6\n');
  t.regex(screen(typed.stdout), /typedhere\n/);
  t.is(typed.status, 6);

  const logs = docker(s, ['logs', '--tail', '2', '-t', 'web']).stdout.trim().split('\n');
  t.is(logs.length, 2);
  t.regex(logs[1]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z tick \d+$/);
  // logs -f follows until the container stops: stop it from the side while following (once the
  // history has come, the follower is connected).
  let connected: () => void;
  const history = new Promise<void>((resolve) => (connected = resolve));
  const following = dockerAsync(s, ['logs', '-f', 'web'], 60_000, (out) => out.includes('tick 1\n') && connected());
  await history;
  t.is(docker(s, ['stop', '-t', '5', 'web']).stdout, 'web\n');
  const followed = await following;
  t.regex(followed.stdout, /^tick 0\n/);
  t.regex(followed.stdout, /bye\n$/, 'logs -f ended with the container, after its stop signal handler');
  t.regex(docker(s, ['ps', '-a']).stdout, /Exited \(0\) .* ago\s+web\n/);
  t.is(docker(s, ['stop', 'web']).status, 0, 'stopping a stopped container is a no-op (304)');
  const noExec = docker(s, ['exec', 'web', 'true']);
  t.not(noExec.status, 0);
  t.regex(noExec.stderr, /Error response from daemon: Container [0-9a-f]{64} is not running/);

  t.is(docker(s, ['start', 'web']).stdout, 'web\n');
  t.regex(docker(s, ['ps']).stdout, /Up .*\s+web\n/);
  t.is(docker(s, ['restart', '-t', '1', 'web']).stdout, 'web\n');
  t.regex(docker(s, ['ps']).stdout, /Up .*\s+web\n/);
  const rm = docker(s, ['rm', 'web']);
  t.is(rm.status, 1);
  t.regex(rm.stderr, /You cannot remove a running container/);
  t.is(docker(s, ['rm', '-f', 'web']).stdout, 'web\n');
  t.is(docker(s, ['rm', '-f', 'web']).status, 0, 'rm -f of a missing container: the CLI ignores the 404');
  t.is(docker(s, ['ps', '-aq']).stdout, '');
  t.is((await request(s.socket, 'GET', '/_ping')).body, 'OK', 'the dropped wait of run -d did not hurt the server');
});

rtest('run -it through a real terminal; -i with piped stdin', (t) => {
  const s = t.context.serve;
  const r = throughPty(s, `docker run -it --rm ${img(t)} sh -c 'test -t 0 && echo TTY; exit 4'`);
  t.is(screen(r.stdout), 'TTY\n');
  t.is(r.status, 4);
  const typed = throughPty(s, `docker run -it --rm ${img(t)} sh`, 'echo typed""here; exit 7\n');
  t.regex(screen(typed.stdout), /typedhere\n/);
  t.is(typed.status, 7);
  t.is(docker(s, ['run', '-i', '--rm', img(t), 'cat'], { input: 'through stdin\n' }).stdout, 'through stdin\n');
});

rtest('tag and rmi', (t) => {
  const s = t.context.serve;
  t.is(docker(s, ['tag', img(t), 'mine:v1']).status, 0);
  t.regex(docker(s, ['images']).stdout, /\nmine\s+v1\s/);
  t.is(docker(s, ['rmi', 'mine:v1']).stdout, 'Untagged: mine:v1\n');
  // layered:1 (pulled by the run test): busybox:1 had a failed start (/bin/nope), which the
  // engine still counts as a use of its image in the daemon's process.
  const layered = `${t.context.reg.host}/layered:1`;
  const used = docker(s, ['create', '--name', 'holder', layered]);
  t.is(used.status, 0, used.stderr);
  const refused = docker(s, ['rmi', layered]);
  t.is(refused.status, 1);
  t.regex(refused.stderr, /in use by container/);
  t.is(docker(s, ['rm', 'holder']).status, 0);
  const rmi = docker(s, ['rmi', layered]);
  t.is(rmi.status, 0, rmi.stderr);
  t.regex(rmi.stdout, new RegExp(`^Untagged: ${layered.replace(/\./g, '\\.')}\nDeleted: sha256:[0-9a-f]{64}\n`));
  const gone = docker(s, ['rmi', layered]);
  t.is(gone.status, 1);
  t.regex(gone.stderr, /No such image/);
});

rtest('system prune, image prune -a: dangling images, then every image no container uses', (t) => {
  const s = t.context.serve;
  const tar = join(s.dir, 'rootfs.tar');
  t.is(spawnSync('tar', ['-C', rootfs(), '-cf', tar, '.']).status, 0);
  const dangling = docker(s, ['import', tar]).stdout.trim();
  const named = docker(s, ['import', tar, 'unused:1']).stdout.trim();
  t.regex(dangling, /^sha256:[0-9a-f]{64}$/);
  t.is(docker(s, ['run', '-d', '--name', 'prune-keeper', img(t), 'sleep', '1000']).status, 0);
  t.teardown(() => docker(s, ['rm', '-f', 'prune-keeper']));
  const prune = docker(s, ['system', 'prune', '-f']);
  t.is(prune.status, 0, prune.stderr);
  t.regex(prune.stdout, new RegExp(`Deleted Images:\\n(?:.*\\n)*?deleted: ${dangling}\\n`));
  t.regex(prune.stdout, /Total reclaimed space: \d/);
  const ids = () => docker(s, ['images', '-q', '--no-trunc']).stdout;
  t.false(ids().includes(dangling));
  t.true(ids().includes(named));
  const all = docker(s, ['image', 'prune', '-a', '-f']);
  t.is(all.status, 0, all.stderr);
  t.regex(all.stdout, /untagged: unused:1\n/);
  t.false(ids().includes(named));
  t.regex(docker(s, ['images']).stdout, /busybox\s+1\s/, 'the image of a running container stays');
});

rtest('volumes: docker volume create/ls/inspect/rm, run -v NAME:/path and -v /path, rm -v, volume prune', (t) => {
  const s = t.context.serve;
  t.is(docker(s, ['volume', 'create', 'dv']).stdout, 'dv\n');
  t.teardown(() => {
    docker(s, ['rm', '-f', '-v', 'vol-user']);
    docker(s, ['volume', 'rm', '-f', 'dv']);
  });
  const names = () => docker(s, ['volume', 'ls', '-q']).stdout.trim().split('\n').filter(Boolean);
  t.true(names().includes('dv'));
  const run = docker(s, ['run', '--name', 'vol-user', '-v', 'dv:/d', '-v', '/anon', img(t), 'sh', '-c', 'echo hi > /d/x; touch /anon/y']);
  t.is(run.status, 0, run.stderr);
  const mounts = docker(s, ['inspect', '-f', '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}};{{end}}{{.HostConfig.Binds}}', 'vol-user']).stdout.trim();
  t.regex(mounts, /^volume dv \/d;volume [0-9a-f]{64} \/anon;\[dv:\/d\]$/);
  const anon = /volume ([0-9a-f]{64}) \/anon/.exec(mounts)![1]!;
  const busy = docker(s, ['volume', 'rm', 'dv']);
  t.is(busy.status, 1);
  t.regex(busy.stderr, /Error response from daemon: remove dv: volume is in use/);
  t.is(docker(s, ['rm', '-v', 'vol-user']).status, 0);
  t.false(names().includes(anon), 'rm -v removed the anonymous volume');
  t.is(docker(s, ['run', '--rm', '-v', 'dv:/d', img(t), 'cat', '/d/x']).stdout, 'hi\n');
  t.regex(docker(s, ['volume', 'inspect', '-f', '{{.Driver}} {{.Name}}', 'dv']).stdout, /^local dv\n$/);
  t.is(docker(s, ['volume', 'rm', 'dv']).stdout, 'dv\n');
  const gone = docker(s, ['volume', 'inspect', 'dv']);
  t.is(gone.status, 1);
  t.regex(gone.stderr, /no such volume/);
  t.is(docker(s, ['run', '--name', 'vol-user', '-v', '/anon', img(t), 'true']).status, 0);
  t.is(docker(s, ['rm', 'vol-user']).status, 0);
  const prune = docker(s, ['volume', 'prune', '-f']);
  t.is(prune.status, 0, prune.stderr);
  t.regex(prune.stdout, /Deleted Volumes:\n[0-9a-f]{64}\n/);
  t.deepEqual(names(), []);
});

rtest('nsbox ps and docker ps print the same status text for the same container', async (t) => {
  const s = t.context.serve;
  t.is(docker(s, ['run', '--name', 'status-text', img(t), 'true']).status, 0);
  t.teardown(() => docker(s, ['rm', '-f', 'status-text']));
  // As a container killed by SIGUSR1 a minute and a half ago would be recorded.
  const engine = await Engine.open({ root: s.root });
  await engine.store.update('status-text', (r) => {
    r.exitCode = null;
    r.signal = 'SIGUSR1';
    r.finishedAt = new Date(Date.now() - 90_000).toISOString();
  });
  const fromDocker = docker(s, ['ps', '-a', '--filter', 'name=status-text', '--format', '{{.Status}}']);
  t.is(fromDocker.status, 0, fromDocker.stderr);
  const cli = spawnSync(process.execPath, [bin, 'ps', '-a', '--format', 'json'], { encoding: 'utf8', env: { ...process.env, NSBOX_ROOT: s.root } });
  t.is(cli.status, 0, cli.stderr);
  const line = cli.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { Names: string; Status: string }).find((x) => x.Names === 'status-text');
  t.is(fromDocker.stdout.trim(), 'Exited (138) About a minute ago');
  t.is(line?.Status, fromDocker.stdout.trim());
});
