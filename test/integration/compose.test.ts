/**
 * Debian's docker-compose 1.29.2 (the Python v1, API 1.41 over DOCKER_HOST) against `nsbox serve`,
 * in a network and mount namespace the test makes (`unshare -n --mount --propagation private`, lo
 * up): a two-service project (a web server built from a Dockerfile with a HEALTHCHECK, a published
 * port and a named volume; a client from an image, started once the server is healthy, that
 * reaches it by service name and by an alias on a second network), then ps, logs, exec, a second
 * `up -d` that changes nothing, a recreate after a change, network connect/disconnect of a
 * running container through the API, and `down -v`, checked from outside compose too. The
 * scenario is test/fixtures/compose-child.ts.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, rootfs } from './_helpers.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'compose-child.ts');
const dist = path.join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns', '/usr/bin/docker-compose', dist].filter((f) => !existsSync(f));
const libnft = ['/usr/lib/x86_64-linux-gnu/libnftables.so.1', '/usr/lib/aarch64-linux-gnu/libnftables.so.1'].some((f) => existsSync(f));
const why = [...missing, ...(libnft ? [] : ['libnftables1']), ...(isRoot ? [] : ['root'])];
const run = why.length === 0 ? test.serial : test.serial.skip;
const title = 'docker-compose up -d (build, image, volume, port, two networks), ps, logs, exec, up again, recreate, down -v';

run(why.length ? `${title} — skipped: missing ${why.join(', ')}` : title, (t) => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-compose-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, rootfs(), tmp], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) throw new Error(`the scenario printed no result (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
  const o = JSON.parse(line) as Record<string, any>;
  if (o.error) throw new Error(o.error);

  t.regex(o.up, /Creating network "demo_default" with the default driver/);
  t.regex(o.up, /Creating network "demo_back" with the default driver/);
  t.regex(o.up, /Creating volume "demo_data" with default driver/);
  t.regex(o.up, /Creating demo_web_1 \.\.\. done/);
  t.regex(o.up, /Creating demo_client_1 \.\.\. done/);
  // The client fetched the page by the service's name, once (no retry): web was healthy before it started.
  t.regex(o.logs, /client_1 +\| hello-from-web\n/);
  t.regex(o.ps, /demo_client_1 +sh -c wget -q -O - .* +Up +\n/);
  t.regex(o.ps, /demo_web_1 +httpd -f -p 80 -h \/www +Up \(healthy\) +0\.0\.0\.0:18090->80\/tcp/);
  t.is(o.fetched, 'hello-from-web\n');
  t.is(o.execByName, 'hello-from-web\n');
  t.is(o.execByAlias, 'hello-from-web\n', 'the alias on the second network (connected by compose between create and start)');
  t.deepEqual(o.interfaces.trim().split(/\s+/).sort(), ['eth0', 'eth1', 'lo']);
  t.is(o.fromVolume, 'in-volume\n');
  t.is(o.volume.note, 'in-volume\n');
  t.like(o.backNetwork, { labels: { team: 'c17', 'com.docker.compose.network': 'back', 'com.docker.compose.project': 'demo' }, containers: ['demo_client_1', 'demo_web_1'] });
  t.deepEqual(o.client.labels, [
    'com.docker.compose.config-hash', 'com.docker.compose.container-number', 'com.docker.compose.oneoff', 'com.docker.compose.project',
    'com.docker.compose.project.config_files', 'com.docker.compose.project.working_dir', 'com.docker.compose.service', 'com.docker.compose.version',
  ]);
  // compose sends the connected network's aliases from a Python set (any order), with the short id.
  const sorted = (a: string[]) => [...a].sort();
  t.deepEqual(sorted(o.client.aliases.demo_back), sorted(['client', o.client.shortId]));
  t.deepEqual(sorted(o.client.aliases.demo_default), sorted(['client', o.client.shortId]));
  t.regex(o.again, /demo_web_1 is up-to-date/);
  t.regex(o.again, /demo_client_1 is up-to-date/);
  t.notRegex(o.again, /Creating|Recreating|Starting/);
  t.true(o.unchanged, 'the second up -d kept both containers');
  t.regex(o.recreate, /demo_web_1 is up-to-date/);
  t.regex(o.recreate, /Recreating demo_client_1 \.\.\. done/);
  t.deepEqual(o.recreated, { web: true, count: 2, names: ['/demo_client_1', '/demo_web_1'] });
  t.is(o.execAfter, 'hi2\nhello-from-web\n');
  t.like(o.connect, { create: 201, first: 200, endpoint: { aliases: ['side', o.connect.endpoint.shortId] }, inNetwork: ['demo_web_1'], host: 409, missing: 404, off: 200, removed: 204 });
  t.regex(o.connect.endpoint.address, /^\d+\.\d+\.\d+\.\d+$/);
  t.deepEqual(o.connect.interfaces.trim().split(/\s+/).sort(), ['eth0', 'eth1', 'eth2', 'lo']);
  t.deepEqual(o.connect.interfacesAfter.trim().split(/\s+/).sort(), ['eth0', 'eth1', 'lo']);
  t.deepEqual(o.connect.twice, { status: 409, json: { message: 'endpoint with name demo_web_1 already exists in network extra' } });
  t.is(o.connect.offTwice.status, 404);
  t.regex(o.connect.offTwice.json.message, /^container [0-9a-f]{64} is not connected to network extra$/);
  t.regex(o.down, /Removing network demo_default/);
  t.regex(o.down, /Removing volume demo_data/);
  t.deepEqual(o.afterDown, { containers: 0, volumes: [], networks: ['bridge', 'host', 'none'], fetch: o.afterDown.fetch, links: 0, netns: 0, portRules: 0 });
  t.regex(o.afterDown.fetch, /ECONNREFUSED/);
});
