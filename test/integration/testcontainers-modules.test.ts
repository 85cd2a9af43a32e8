/**
 * testcontainers-node's modules @testcontainers/redis and @testcontainers/postgresql, unchanged,
 * against `nsbox serve`, with images built here (test/fixtures/service-images.ts: Debian's redis
 * and postgresql packages on the seeded debian:bookworm-minbase, installed by dpkg -i in an
 * nsbox build with no network). The images are built in the test's own network namespace (the
 * seeded registry is on its loopback); the scenario runs in a namespace of its own
 * (test/fixtures/testcontainers-modules-child.ts), as testcontainers.test.ts's does.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, skipIf } from './_helpers.js';
import { buildServiceImages, serviceImagesMissing } from '../fixtures/service-images.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'testcontainers-modules-child.ts');
const dist = path.join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const registry = process.env.NSBOX_REGISTRY ?? '127.0.0.1:5000';
const resolvable = (m: string) => {
  try {
    createRequire(import.meta.url).resolve(m);
    return true;
  } catch {
    // not installed: the test is skipped and says so
    return false;
  }
};
const why = [
  ...['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns', dist].filter((f) => !existsSync(f)),
  ...(isRoot ? [] : ['root']),
  ...['@testcontainers/redis', '@testcontainers/postgresql', 'pg'].filter((m) => !resolvable(m)).map((m) => `${m} (npm install)`),
];
if (why.length === 0) {
  const images = await serviceImagesMissing(registry);
  if (images) why.push(images);
}
const run = skipIf(why.length ? `needs root, nftables, aardvark-dns, dist/, the modules and the seeded Debian image (missing ${why.join(', ')})` : undefined, test.serial);

run('@testcontainers/redis and @testcontainers/postgresql against nsbox serve, images built from Debian packages: PING, redis-cli ping inside, SELECT 1', async (t) => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-tcmod-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const root = path.join(tmp, 'root');
  mkdirSync(root);
  const images = buildServiceImages(root, registry, ['redis', 'postgres'], (s) => t.log(s));
  const o = await new Promise<Record<string, any>>((resolve, reject) => {
    const child = spawn('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, tmp, images.redis, images.postgres], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      if (!line.startsWith('{')) return reject(new Error(`the child printed no result (status ${status}, signal ${signal}): ${stderr.slice(-4000)}`));
      const r = JSON.parse(line) as Record<string, any>;
      if (r.error) return reject(new Error(`${r.error}\n${stderr.slice(-3000)}`));
      resolve(r);
    });
  });
  t.regex(o.redisUrl, /^redis:\/\/[^:]+:\d+$/);
  t.is(o.redisPing, '+PONG');
  t.deepEqual(o.redisSetGet, ['+OK', '$5']);
  t.is(o.redisCliPing, 'PONG\n');
  t.regex(o.postgresUri, /^postgres(ql)?:\/\/tester:s3cret@[^/]+:\d+\/app$/);
  t.deepEqual(o.select1, [{ one: 1 }]);
  t.deepEqual(o.whoami, { u: 'tester', d: 'app' });
  t.regex(o.wrongPassword, /password authentication failed for user "tester"/);
  t.deepEqual(o.leftContainers, []);
});
