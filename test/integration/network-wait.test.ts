/**
 * The SDK's readiness waits (`waitFor` on Container.run) against the real kernel, in a network and
 * mount namespace the test makes (as network.test.ts): each strategy passing and timing out, the
 * timeout's message naming what it awaited with the log's tail, an exit failing the wait at once,
 * `files` copied in before the start, url/mappedPort/logs. Scenarios: test/fixtures/wait-child.ts.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, rootfs } from './_helpers.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'wait-child.ts');
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns'].filter((f) => !existsSync(f));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let o: Record<string, any> | undefined;
function scenarios(): Record<string, any> {
  if (o) return o;
  const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-wait-'));
  try {
    const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, rootfs(), tmp], {
      encoding: 'utf8',
      timeout: 150_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) throw new Error(`the wait scenarios printed no result (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
    o = JSON.parse(line) as Record<string, any>;
    if (o.error) throw new Error(`wait scenarios: ${o.error}`);
    if (o.removeError) throw new Error(`wait scenarios: removal: ${o.removeError}`);
    return o;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const run = isRoot && missing.length === 0 ? test.serial : test.serial.skip;
if (!isRoot) test('wait tests need root (skipped)', (t) => t.log('not root'));
else if (missing.length) test('wait tests need nftables and aardvark-dns (skipped)', (t) => t.log(`missing ${missing.join(', ')}`));

const timedOut = (r: any, awaited: RegExp, tail: RegExp) => {
  if (r.ok) return `resolved: ${JSON.stringify(r)}`;
  if (r.name !== 'WaitError' || r.code !== 'ERR_WAIT_TIMEOUT') return `not a timeout: ${JSON.stringify(r)}`;
  if (!awaited.test(r.message)) return `the message does not name ${awaited}: ${r.message}`;
  if (!tail.test(r.message)) return `the message has no log tail ${tail}: ${r.message}`;
  return true;
};

run('port: listening inside and reachable from the host; a port never opened times out naming it, with the log tail', (t) => {
  const r = scenarios();
  t.true(r.port.ok, JSON.stringify(r.port));
  t.regex(r.portFetch, /^[0-9a-f]{12}\n$/, 'the container\'s /etc/hostname through the published port');
  t.true(r.mappedPort);
  t.regex(r.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.regex(r.logsText, /^starting\nReady to accept\n/);
  t.is(timedOut(r.portTimeout, /timed out after 400 ms waiting for port 81 to listen \(not listening inside the container yet\)/, /--- last 1 log lines ---\nonly this line/), true);
  t.true(r.insideOnly.ok, JSON.stringify(r.insideOnly));
  t.is(timedOut(r.insideOnlyTimeout, /waiting for port 80 to listen/, /the container printed nothing/), true);
});

run('log: a matching line; times counts matches, and its timeout says how many it saw', (t) => {
  const r = scenarios();
  t.true(r.log.ok, JSON.stringify(r.log));
  t.is(timedOut(r.logTimes, /waiting for log \/Ready to accept\/ ×2 \(1 of 2 seen\)/, /Ready to accept/), true);
  t.deepEqual(r.logTimes.tail, ['Ready to accept']);
});

run('http: a 2xx answer; a status never answered times out with the last answer', (t) => {
  const r = scenarios();
  t.true(r.http.ok, JSON.stringify(r.http));
  t.is(timedOut(r.httpStatus, /waiting for HTTP GET \/nope on port 80 to answer 200 \(last answer 404 from http:\/\/127\.0\.0\.1:\d+\/nope\)/, /the container printed nothing/), true);
});

run('exec: a command that comes to succeed; one that never does times out with its exit code', (t) => {
  const r = scenarios();
  t.true(r.exec.ok, JSON.stringify(r.exec));
  t.is(timedOut(r.execTimeout, /waiting for \["test","-f","\/tmp\/never"\] to exit 0 \(last exit code 1\)/, /printed nothing/), true);
});

run('all: every strategy; its timeout says which were ready', (t) => {
  const r = scenarios();
  t.true(r.all.ok, JSON.stringify(r.all));
  t.is(timedOut(r.allTimeout, /log "Ready to accept": ready; port 8080 to listen: not listening inside the container yet/, /Ready to accept/), true);
});

run('an exit fails the wait at once, with the exit code and the log tail', (t) => {
  const r = scenarios();
  t.false(r.exited.ok);
  t.is(r.exited.code, 'ERR_WAIT_EXITED');
  t.regex(r.exited.message, /ended \(exit code 3\) while waiting for port 80 to listen/);
  t.regex(r.exited.message, /boom/);
  t.true(r.exited.beforeTimeout);
});

run('files are copied in before the start; logs() as text and as a followed stream', (t) => {
  const r = scenarios();
  t.true(r.files.ok, JSON.stringify(r.files));
  t.is(r.files.logs, 'conf\npage\ndone\n');
  t.is(r.follow, 'conf\npage\ndone\n');
});
