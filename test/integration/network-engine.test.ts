/**
 * The engine's and the CLI's networking (`nsbox run -p`, `port`, `ps`, stop, start, rm) against the
 * real kernel, in a network and mount namespace the test makes (`unshare -n --mount --propagation
 * private`, lo up): bridges, veths and nft rules exist only there. The scenario is
 * test/fixtures/network-engine-child.ts; it prints what it saw as JSON.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, rootfs } from './_helpers.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'network-engine-child.ts');
const dist = path.join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns', dist].filter((f) => !existsSync(f));
const libnft = ['/usr/lib/x86_64-linux-gnu/libnftables.so.1', '/usr/lib/aarch64-linux-gnu/libnftables.so.1'].some((f) => existsSync(f));
const run = isRoot && libnft && missing.length === 0 ? test.serial : test.serial.skip;
if (!isRoot || !libnft || missing.length) test('network engine tests need root, nftables, aardvark-dns and dist/ (skipped)', (t) => t.log(`missing: ${[...missing, ...(libnft ? [] : ['libnftables1']), ...(isRoot ? [] : ['root'])].join(', ')}`));

run('nsbox run -d -p 18080:80: reachable on 127.0.0.1, port, ps, a busy port refused, stop releases, start again, rm leaves nothing', (t) => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-neteng-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, rootfs(), tmp], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) throw new Error(`the scenario printed no result (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
  const o = JSON.parse(line) as Record<string, any>;
  if (o.error) throw new Error(o.error);
  t.is(o.fetched, `${o.hostname}\n`);
  t.is(o.port, '80/tcp -> 0.0.0.0:18080\n');
  t.is(o.portOne, '0.0.0.0:18080\n');
  t.regex(o.ps, /\s0\.0\.0\.0:18080->80\/tcp\s+web\n/);
  t.is(o.psJson, '0.0.0.0:18080->80/tcp');
  t.not(o.busy.status, 0);
  t.regex(o.busy.stderr, /0\.0\.0\.0:18080.*(already allocated|already in use)/);
  t.is(o.busyRunning, 1);
  t.regex(o.afterStop, /ECONNREFUSED/);
  t.deepEqual(o.stoppedLeft, { links: 0, netns: 0, portRules: 0 });
  t.is(o.stoppedPort, '');
  t.is(o.restarted, `${o.hostname}\n`);
  t.deepEqual(o.left, { links: 0, netns: 0, portRules: 0 });
  t.regex(o.random.line, /^0\.0\.0\.0:\d+\n$/);
  t.regex(o.random.fetched, /^[0-9a-f]{12}\n$/);
  t.notRegex(o.none, /eth0/);
  t.regex(o.bridge, /eth0:/);
  t.deepEqual(o.final, { links: 0, netns: 0, portRules: 0 });
  if (!o.docker) return t.log('no docker CLI: the docker part was skipped');
  t.is(o.docker.run, 'ok');
  t.regex(o.docker.fetched, /^[0-9a-f]{12}\n$/);
  // lib/api shows a binding on every address as docker 28 does, on 0.0.0.0 and on ::.
  t.regex(o.docker.port, /^80\/tcp -> 0\.0\.0\.0:18082\n/);
  t.regex(o.docker.ps, /^dweb 0\.0\.0\.0:18082->80\/tcp/);
  t.is(o.docker.rm, 0);
  t.deepEqual(o.docker.left, { links: 0, netns: 0, portRules: 0 });
});
