import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { parseReference, withDigest } from '../../lib/image/reference.js';
import { parseChallenges } from '../../lib/image/registry/challenge.js';
import { choosePlatform, hostPlatform, parsePlatform } from '../../lib/image/registry/platform.js';
import { isLoopback } from '../../lib/image/registry/transport.js';
import { normalizeRegistryKey } from '../../lib/image/registry/credentials.js';

const D = `sha256:${'ab'.repeat(32)}`;

const cases: Array<[string, string, string, string, string | undefined, string | undefined, string]> = [
  // input, domain, path, full, tag, digest, familiar
  ['busybox', 'docker.io', 'library/busybox', 'docker.io/library/busybox:latest', 'latest', undefined, 'busybox:latest'],
  ['busybox:1.35', 'docker.io', 'library/busybox', 'docker.io/library/busybox:1.35', '1.35', undefined, 'busybox:1.35'],
  ['library/busybox', 'docker.io', 'library/busybox', 'docker.io/library/busybox:latest', 'latest', undefined, 'busybox:latest'],
  ['docker.io/busybox', 'docker.io', 'library/busybox', 'docker.io/library/busybox:latest', 'latest', undefined, 'busybox:latest'],
  ['index.docker.io/library/busybox', 'docker.io', 'library/busybox', 'docker.io/library/busybox:latest', 'latest', undefined, 'busybox:latest'],
  ['user/app:v1', 'docker.io', 'user/app', 'docker.io/user/app:v1', 'v1', undefined, 'user/app:v1'],
  ['host:5000/a/b:tag', 'host:5000', 'a/b', 'host:5000/a/b:tag', 'tag', undefined, 'host:5000/a/b:tag'],
  ['127.0.0.1:5000/busybox', '127.0.0.1:5000', 'busybox', '127.0.0.1:5000/busybox:latest', 'latest', undefined, '127.0.0.1:5000/busybox:latest'],
  ['localhost/foo', 'localhost', 'foo', 'localhost/foo:latest', 'latest', undefined, 'localhost/foo:latest'],
  ['localhost:5000/foo', 'localhost:5000', 'foo', 'localhost:5000/foo:latest', 'latest', undefined, 'localhost:5000/foo:latest'],
  ['quay.io/org/x', 'quay.io', 'org/x', 'quay.io/org/x:latest', 'latest', undefined, 'quay.io/org/x:latest'],
  ['foo/bar/baz', 'docker.io', 'foo/bar/baz', 'docker.io/foo/bar/baz:latest', 'latest', undefined, 'foo/bar/baz:latest'],
  ['Example.com/foo', 'Example.com', 'foo', 'Example.com/foo:latest', 'latest', undefined, 'Example.com/foo:latest'],
  ['a-b_c__d/x.y', 'docker.io', 'a-b_c__d/x.y', 'docker.io/a-b_c__d/x.y:latest', 'latest', undefined, 'a-b_c__d/x.y:latest'],
  [`busybox@${D}`, 'docker.io', 'library/busybox', `docker.io/library/busybox@${D}`, undefined, D, `busybox@${D}`],
  [`busybox:1.35@${D}`, 'docker.io', 'library/busybox', `docker.io/library/busybox:1.35@${D}`, '1.35', D, `busybox:1.35@${D}`],
  [`host:5000/x@${D}`, 'host:5000', 'x', `host:5000/x@${D}`, undefined, D, `host:5000/x@${D}`],
  ['[::1]:5000/x:t', '[::1]:5000', 'x', '[::1]:5000/x:t', 't', undefined, '[::1]:5000/x:t'],
];

for (const [input, domain, path, full, tag, digest, familiar] of cases) {
  test(`parses ${input}`, (t) => {
    const r = parseReference(input);
    t.is(r.domain, domain);
    t.is(r.path, path);
    t.is(r.tag, tag);
    t.is(r.digest, digest);
    t.is(r.toString(), full);
    t.is(`${r}`, full);
    t.is(r.familiar, familiar);
    t.is(r.name, `${domain}/${path}`);
  });
}

const bad: Array<[string, RegExp]> = [
  ['', /empty/],
  ['Busybox', /lowercase/],
  ['docker.io/Foo/bar', /lowercase/],
  ['busybox:', /not a valid tag/],
  ['busybox:-x', /not a valid tag/],
  [`busybox:${'a'.repeat(129)}`, /not a valid tag/],
  ['busybox@sha256:zz', /not a digest/],
  [`busybox@sha256:${'AB'.repeat(32)}`, /lowercase hex/],
  ['busybox@', /not a digest/],
  ['a//b', /empty path component/],
  ['host:5000/', /empty path component|missing/],
  ['-foo', /not a valid repository path component/],
  ['foo_', /not a valid repository path component/],
  ['foo..bar', /not a valid repository path component/],
  ['ab'.repeat(32), /64-character hex/],
  [' busybox', /white space/],
  ['ho_st:5000/x', /not a valid registry host/],
  // a '.' makes the first part a host, as in docker, and '_' is not allowed there
  ['a-b.c_d/x', /not a valid registry host/],
  [`example.com/${'a'.repeat(250)}`, /longer than 255/],
  [':tag', /missing/],
];

for (const [input, why] of bad) {
  test(`rejects ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`, (t) => {
    const err = t.throws(() => parseReference(input), { instanceOf: ValidationError });
    t.regex(err!.message, why);
    t.regex(err!.message, /^invalid image reference /);
    t.is(err!.field, 'reference');
  });
}

test('withDigest keeps the tag', (t) => {
  t.is(withDigest(parseReference('busybox:1.35'), D).toString(), `docker.io/library/busybox:1.35@${D}`);
});

test('WWW-Authenticate challenges', (t) => {
  t.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  t.deepEqual(parseChallenges('Basic realm="nsbox-registry"'), [{ scheme: 'basic', params: { realm: 'nsbox-registry' } }]);
  t.deepEqual(parseChallenges(['Basic realm="a\\"b"', 'Bearer realm=x, error="insufficient_scope"']), [
    { scheme: 'basic', params: { realm: 'a"b' } },
    { scheme: 'bearer', params: { realm: 'x', error: 'insufficient_scope' } },
  ]);
  t.deepEqual(parseChallenges(undefined), []);
});

test('host platform and platform choice', (t) => {
  t.deepEqual(hostPlatform('x64'), { os: 'linux', architecture: 'amd64' });
  t.deepEqual(hostPlatform('arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  t.deepEqual(hostPlatform('arm', '7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  t.deepEqual(parsePlatform('linux/x64'), { os: 'linux', architecture: 'amd64' });
  t.throws(() => parsePlatform('linux'), { instanceOf: ValidationError });
  const m = (architecture: string, variant?: string) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${architecture}${variant ?? ''}`, size: 1,
    platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) },
  });
  const list = [m('amd64'), m('arm64', 'v8'), m('arm', 'v6'), m('arm', 'v7')];
  t.is(choosePlatform(list, { os: 'linux', architecture: 'amd64' })?.digest, 'sha256:amd64');
  t.is(choosePlatform(list, { os: 'linux', architecture: 'arm64' })?.digest, 'sha256:arm64v8');
  t.is(choosePlatform([m('arm64')], { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest, 'sha256:arm64');
  t.is(choosePlatform(list, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, 'sha256:armv7');
  t.is(choosePlatform([m('arm', 'v6')], { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, 'sha256:armv6');
  t.is(choosePlatform(list, { os: 'linux', architecture: 's390x' }), undefined);
  t.is(choosePlatform(list, { os: 'windows', architecture: 'amd64' }), undefined);
});

test('plain HTTP only for loopback', (t) => {
  for (const h of ['127.0.0.1:5000', 'localhost', 'localhost:5000', '[::1]:5000', '127.1.2.3']) t.true(isLoopback(h), h);
  for (const h of ['docker.io', '10.0.0.1:5000', 'example.com', 'localhost.example.com']) t.false(isLoopback(h), h);
});

test('docker config keys normalise', (t) => {
  t.is(normalizeRegistryKey('https://index.docker.io/v1/'), 'docker.io');
  t.is(normalizeRegistryKey('http://127.0.0.1:5001'), '127.0.0.1:5001');
  t.is(normalizeRegistryKey('127.0.0.1:5001'), '127.0.0.1:5001');
});
