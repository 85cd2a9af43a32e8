/** tools/reaper/reaper.mjs: Ryuk's settings (Go durations) and its filter lines. */
import test from 'ava';
// @ts-expect-error: a plain .mjs tool without types (it runs in the reaper image, with node alone)
import { loadConfig, parseDuration, parseFilterLine } from '../../tools/reaper/reaper.mjs';

test('Go durations as Ryuk reads RYUK_*_TIMEOUT', (t) => {
  t.is(parseDuration('10s'), 10_000);
  t.is(parseDuration('1m30s'), 90_000);
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('1.5h'), 5_400_000);
  t.is(parseDuration('0'), 0);
  for (const bad of ['10', 's', '10x', '1m 2s', '']) t.throws(() => parseDuration(bad), undefined, bad);
});

test("Ryuk's defaults, and its environment over them", (t) => {
  t.like(loadConfig({}), { port: 8080, connectionTimeout: 60_000, reconnectionTimeout: 10_000, removeRetries: 10, verbose: false, socketPath: '/var/run/docker.sock' });
  t.like(loadConfig({ RYUK_PORT: '9000', RYUK_RECONNECTION_TIMEOUT: '1s', RYUK_VERBOSE: 'true', DOCKER_HOST: 'unix:///run/x.sock' }), { port: 9000, reconnectionTimeout: 1000, verbose: true, socketPath: '/run/x.sock' });
  t.throws(() => loadConfig({ RYUK_CONNECTION_TIMEOUT: 'soon' }), { message: /RYUK_CONNECTION_TIMEOUT: invalid duration "soon"/ });
  t.throws(() => loadConfig({ DOCKER_HOST: 'tcp://1.2.3.4:2375' }), { message: /only unix:\/\/ sockets/ });
});

test('a filter line is docker filters JSON, keyed the same whatever its order', (t) => {
  const a = parseFilterLine('label=org.testcontainers.session-id=abc&label=x=1');
  t.deepEqual(a.filters, { label: { 'org.testcontainers.session-id=abc': true, 'x=1': true } });
  t.is(parseFilterLine('label=x=1&label=org.testcontainers.session-id=abc').key, a.key);
  t.not(parseFilterLine('label=x=2').key, a.key);
  t.deepEqual(parseFilterLine('label=com.docker.compose.project=p%20q').filters, { label: { 'com.docker.compose.project=p q': true } });
});
