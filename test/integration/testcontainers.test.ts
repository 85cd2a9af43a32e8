/**
 * testcontainers-node (the npm package, unchanged) against `nsbox serve`, in a network and mount
 * namespace the test makes (`unshare -n --mount --propagation private`, lo up): the bridges,
 * published ports and nft rules are the namespace's own. The scenario is
 * test/fixtures/testcontainers-scenario.ts (plain testcontainers code), run by
 * test/fixtures/testcontainers-child.ts, which starts serve, imports the images and builds the
 * reaper image; it prints what it saw as JSON.
 *
 * Two runs: `env` finds the engine by DOCKER_HOST alone, with Ryuk on (nsbox's reaper image,
 * tools/reaper/, tagged as testcontainers' Ryuk), and leaves containers and a network for the
 * reaper; `properties` finds it by ~/.testcontainers.properties (a temp HOME) with
 * TESTCONTAINERS_RYUK_DISABLED=true, and stops what it started.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, rootfs, skipIf } from './_helpers.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'testcontainers-child.ts');
const dist = path.join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const hasTestcontainers = (() => {
  try {
    createRequire(import.meta.url).resolve('testcontainers');
    return true;
  } catch {
    // not installed: the tests below are skipped and say so
    return false;
  }
})();
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns', dist].filter((f) => !existsSync(f));
const libnft = ['/usr/lib/x86_64-linux-gnu/libnftables.so.1', '/usr/lib/aarch64-linux-gnu/libnftables.so.1'].some((f) => existsSync(f));
const why = [...missing, ...(libnft ? [] : ['libnftables1']), ...(isRoot ? [] : ['root']), ...(hasTestcontainers ? [] : ['the testcontainers package (npm install)'])];
const run = skipIf(why.length ? `needs root, nftables, aardvark-dns, dist/ and testcontainers (missing ${why.join(', ')})` : undefined, test.serial);

type Result = Record<string, any>;
const runs = new Map<string, Promise<Result>>();

/** The child in a namespace of its own, once per mode; its JSON line. */
function scenario(mode: 'env' | 'properties'): Promise<Result> {
  let p = runs.get(mode);
  if (p) return p;
  p = new Promise<Result>((resolve, reject) => {
    const tmp = mkdtempSync(path.join(tmpdir(), `nsbox-tc-${mode}-`));
    const child = spawn('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, rootfs(), tmp, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      rmSync(tmp, { recursive: true, force: true });
      const line = stdout.trim().split('\n').pop() ?? '';
      if (!line.startsWith('{')) return reject(new Error(`the ${mode} run printed no result (status ${status}, signal ${signal}): ${stderr.slice(-4000)}`));
      const o = JSON.parse(line) as Result;
      if (o.error) return reject(new Error(o.error));
      resolve(o);
    });
  });
  runs.set(mode, p);
  return p;
}

/** What every run's scenario must have seen, whichever way it found the engine. */
function checkScenario(t: import('ava').ExecutionContext, o: Result): void {
  const s = o.scenario;
  for (const step of ['web', 'health', 'ports', 'logs', 'copy', 'network', 'reuse']) t.is(s.errors[step], undefined, `step ${step}`);
  // Wait.forHttp, getMappedPort, withEnvironment, exec (output, exit code, user).
  t.is(s.httpFetched, `200 ${s.httpHostname}\n`);
  t.regex(s.httpHostname, /^[0-9a-f]{12}$/);
  t.deepEqual(s.execEnv, { output: 'hello from env\n', stdout: 'hello from env\n', stderr: '', exitCode: 0 });
  t.deepEqual(s.execFail, { output: 'oops\n', stdout: '', stderr: 'oops\n', exitCode: 3 });
  t.is(s.execUser, '65534\n');
  // withHealthCheck (the create body's Healthcheck) and Wait.forHealthCheck: healthy, then reachable.
  t.regex(s.healthFetched, /^200 [0-9a-f]{12}\n$/);
  // Wait.forListeningPorts, then stop(): the container is removed.
  t.regex(s.portsFetched, /^200 [0-9a-f]{12}\n$/);
  t.is(o.stoppedInspect, 404);
  // Wait.forLogMessage, logs() (stdout and stderr), restart() waits on the new start's output only.
  t.deepEqual(s.logs.map((l: string) => l.replace(/^start .*/, 'start')), ['ready', 'start', 'to-stderr']);
  t.is(s.logsAfterRestart, 2);
  t.is(s.restartedRunning, 0);
  // withCopy*ToContainer before the start, copy*ToContainer after it (mode kept), copyArchiveFromContainer.
  t.is(s.copied, 'from a host file\nfrom content\nfrom a host file\nbytes\ndeep\n640\n');
  t.deepEqual(s.archiveNames, ['later/', 'later/bytes.txt', 'later/file.txt', 'later/tree/', 'later/tree/sub/', 'later/tree/sub/deep.txt']);
  // Network + withNetworkAliases: connected before the start, found by its alias from the other.
  t.is(s.byAlias.trim(), s.aliasedHostname);
  t.deepEqual(s.clientNetworks, [s.networkName]);
  // withReuse: the second start found the first container.
  t.true(s.reused);
}

run('DOCKER_HOST only, Ryuk on: wait for HTTP, health, ports and log; mapped ports, exec, logs, restart, stop, copy to and from, reuse', async (t) => {
  const o = await scenario('env');
  t.is(o.reaperImage, 'testcontainers/ryuk:0.14.0');
  checkScenario(t, o);
});

run('DOCKER_HOST only, Ryuk on: the reaper removes what the test process left once it is gone, then itself', async (t) => {
  const o = await scenario('env');
  t.true(o.reaperFound, 'testcontainers started its reaper from the image built here');
  t.true(o.scenario.left.containers.length >= 2, 'the scenario left containers running');
  // 200: it went while we waited; 404: before we asked.
  t.true([200, 404].includes(o.reaperWait), `reaper wait: ${o.reaperWait}`);
  t.regex(o.reaperLog, /adding filter filter=\{"label":\{"org\.testcontainers\.session-id=[0-9a-f]{12}":true\}\}/);
  t.regex(o.reaperLog, /removed containers=\d+ networks=\d+ volumes=0 images=0/);
  t.notRegex(o.reaperLog, /remove failed|fatal/);
  t.deepEqual(o.leftAfterReaper.containers, o.scenario.left.containers.map(() => 404));
  if (o.scenario.left.network) t.is(o.leftAfterReaper.network, 404);
  t.deepEqual(o.after, { containers: [], networks: [], links: 0, portRules: 0 });
  t.is(o.cleanedUp, 0, 'nothing was left for the fixture to remove');
});

run('~/.testcontainers.properties docker.host, Ryuk off: the same scenario, and stop leaves nothing', async (t) => {
  const o = await scenario('properties');
  checkScenario(t, o);
  t.is(o.scenario.errors.cleanup, undefined);
  t.deepEqual(o.after, { containers: [], networks: [], links: 0, portRules: 0 });
  t.is(o.cleanedUp, 0, 'nothing was left for the fixture to remove');
});
