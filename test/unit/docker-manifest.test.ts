import test from 'ava';
import { dockerManifestList, refusesMediaType, toDockerManifest } from '../../lib/image/docker-manifest.js';
import { RegistryError } from '../../lib/image/registry/index.js';
import { ValidationError } from '../../lib/errors.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const oci = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('a'), size: 10 },
  layers: [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 20, annotations: { x: 'y' } },
    { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: d('c'), size: 30, urls: ['https://example.org/c'] },
  ],
  annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
};

test('an OCI manifest as Docker schema2: the same blobs, Docker media types, no annotations', (t) => {
  const out = JSON.parse(toDockerManifest(Buffer.from(JSON.stringify(oci))).toString('utf8'));
  t.deepEqual(out, {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: d('a'), size: 10 },
    layers: [
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: d('b'), size: 20 },
      { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d('c'), size: 30, urls: ['https://example.org/c'] },
    ],
  });
});

test('an artifact (a config type with no Docker form) cannot go as Docker schema2', (t) => {
  const art = { ...oci, config: { ...oci.config, mediaType: 'application/vnd.example.thing+json' } };
  t.throws(() => toDockerManifest(Buffer.from(JSON.stringify(art))), { instanceOf: ValidationError, message: /no media type for the config type application\/vnd\.example\.thing\+json/ });
});

test('a Docker manifest list names each manifest with its platform; an entry without one is refused', (t) => {
  const out = JSON.parse(dockerManifestList([{ mediaType: 'x', digest: d('d'), size: 5, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, annotations: { a: 'b' } }]).toString('utf8'));
  t.deepEqual(out, {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: d('d'), size: 5, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
  });
  t.throws(() => dockerManifestList([{ mediaType: 'x', digest: d('d'), size: 5 }]));
});

test('what counts as a refusal of the media type: 415, or 400 MANIFEST_INVALID; not a missing blob, not a 401', (t) => {
  const e = (status: number, code: string) => new RegistryError('x', { registry: 'r', status, code });
  t.true(refusesMediaType(e(415, 'HTTP_415')));
  t.true(refusesMediaType(e(400, 'MANIFEST_INVALID')));
  t.false(refusesMediaType(e(400, 'MANIFEST_BLOB_UNKNOWN')));
  t.false(refusesMediaType(e(401, 'UNAUTHORIZED')));
  t.false(refusesMediaType(new Error('x')));
});
