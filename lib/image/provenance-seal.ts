/**
 * The part of provenance.ts that makes an image's provenance (the manifest's annotations, the
 * in-toto statement, the attestation manifest and the index holding it), without zod or the store:
 * the quick `nsbox build` (lib/cli/quick/build.ts) seals a fully cached build's manifest with it,
 * as the full build does. provenance.ts re-exports all of it.
 */
import { readFileSync } from 'node:fs';
import { packagePath } from '../package-root.js';
import { sha256 } from '../storage/sha256.js';
import { whoAmI } from '../storage/who-am-i.js';
import { MediaType } from './registry/media-type.js';

export const IN_TOTO = 'application/vnd.in-toto+json';
export const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';
export const REF_TYPE = 'vnd.docker.reference.type';
export const REF_DIGEST = 'vnd.docker.reference.digest';
export const ATTESTATION = 'attestation-manifest';
const BUILD_TYPE = 'https://github.com/nsbox/nsbox/provenance@v1';

/** What the caller knows about how the image was made. */
export interface ProvenanceInput {
  kind: 'build' | 'commit' | 'import';
  /** The image's `created` (the config's), also the annotation's. */
  created: string;
  startedOn: string;
  author?: string | undefined;
  /** The Dockerfile (build): its digest, path and instructions as written. */
  dockerfile?: { digest: string; path: string; instructions: string[] } | undefined;
  /** Build args (secrets are never build args; args named like one are left out: see publicArgs). */
  buildArgs?: Record<string, string> | undefined;
  /** sha256 over the context's files (build), or of the imported tar. */
  context?: { digest: string; uri?: string | undefined } | undefined;
  base?: { name: string; digest: string } | undefined;
  /** org.opencontainers.image.source (the label of that name, or the context's git remote). */
  source?: string | undefined;
  /** The context's git HEAD commit. */
  revision?: string | undefined;
  /** Anything else the kind records (commit: the container, the changes, the comment). */
  parameters?: Record<string, unknown> | undefined;
}

export function nsboxVersion(): string {
  return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
}

/** Build args whose names say they hold a secret stay out of the record (BuildKit keeps secrets apart; plain args may still carry one). */
export function publicArgs(args: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(args).filter(([k]) => !/(secret|passw|token|credential|api_?key|private)/i.test(k)));
}

/** The manifest annotations: deterministic (from the inputs only), so a reproducible build stays reproducible. */
export function provenanceAnnotations(p: ProvenanceInput): Record<string, string> {
  return {
    'org.opencontainers.image.created': p.created,
    ...(p.source ? { 'org.opencontainers.image.source': p.source } : {}),
    ...(p.revision ? { 'org.opencontainers.image.revision': p.revision } : {}),
    ...(p.base ? { 'org.opencontainers.image.base.name': p.base.name, 'org.opencontainers.image.base.digest': p.base.digest } : {}),
  };
}

const hex = (digest: string) => digest.slice(digest.indexOf(':') + 1);

/** The in-toto statement (SLSA provenance v0.2, the predicate BuildKit writes by default). */
export function provenanceStatement(p: ProvenanceInput, subject: { digest: string; names: string[] }): Buffer {
  const materials = [
    ...(p.base ? [{ uri: `pkg:docker/${p.base.name}`, digest: { sha256: hex(p.base.digest) } }] : []),
    ...(p.source && p.revision ? [{ uri: p.source, digest: { sha1: p.revision } }] : []),
  ];
  const statement = {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: SLSA_V02,
    subject: (subject.names.length ? subject.names : ['']).map((n) => ({ name: n ? `pkg:docker/${n}` : '_', digest: { sha256: hex(subject.digest) } })),
    predicate: {
      builder: { id: `nsbox@${nsboxVersion()}` },
      buildType: BUILD_TYPE,
      invocation: {
        configSource: {
          ...(p.context?.uri ? { uri: p.context.uri } : {}),
          ...(p.dockerfile ? { digest: { sha256: hex(p.dockerfile.digest) }, entryPoint: p.dockerfile.path } : {}),
        },
        parameters: {
          kind: p.kind,
          ...(p.dockerfile ? { instructions: p.dockerfile.instructions } : {}),
          ...(p.buildArgs ? { args: publicArgs(p.buildArgs) } : {}),
          ...p.parameters,
        },
        environment: { user: whoAmI(), platform: `${process.platform}/${process.arch}`, nsbox: nsboxVersion() },
      },
      metadata: {
        buildStartedOn: p.startedOn,
        buildFinishedOn: new Date().toISOString(),
        completeness: { parameters: true, environment: true, materials: false },
        reproducible: false,
        'https://github.com/nsbox/nsbox/provenance': {
          ...(p.author ? { author: p.author } : {}),
          ...(p.context ? { context: p.context.digest } : {}),
          created: p.created,
        },
      },
      materials,
    },
  };
  return Buffer.from(JSON.stringify(statement));
}

export interface Blob {
  bytes: Buffer;
  digest: string;
}

/** The attestation manifest, its config and statement, and the index holding them with the image: blobs to keep, the index's digest. */
export function attestationIndex(
  image: { digest: string; size: number; mediaType: string; platform: { os: string; architecture: string; variant?: string | undefined } },
  statement: Buffer,
): { blobs: Blob[]; index: string } {
  const layer = { mediaType: IN_TOTO, digest: sha256(statement), size: statement.length, annotations: { 'in-toto.io/predicate-type': SLSA_V02 } };
  // BuildKit's attestation config: valid for registries, ignored by readers.
  const config = Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.length },
    layers: [layer],
  }));
  const { variant, ...platform } = image.platform;
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: image.mediaType, digest: image.digest, size: image.size, platform: { ...platform, ...(variant ? { variant } : {}) } },
      {
        mediaType: MediaType.ociManifest,
        digest: sha256(manifest),
        size: manifest.length,
        annotations: { [REF_DIGEST]: image.digest, [REF_TYPE]: ATTESTATION },
        platform: { architecture: 'unknown', os: 'unknown' },
      },
    ],
  }));
  const blobs = [statement, config, manifest, index].map((bytes) => ({ bytes, digest: sha256(bytes) }));
  return { blobs, index: sha256(index) };
}

/**
 * An image manifest with its provenance: the annotations added to `manifest`, its bytes and digest,
 * and the attestation and index blobs to keep with it (ArchiveImage's `extra` and `index`).
 */
export function sealManifest(
  manifest: Record<string, unknown> & { mediaType: string },
  p: ProvenanceInput,
  platform: { os: string; architecture: string; variant?: string | undefined },
  names: string[],
): { manifest: { bytes: Buffer; digest: string; mediaType: string }; extra: Blob[]; index: string } {
  const annotated = { ...manifest, annotations: { ...(manifest['annotations'] as Record<string, string> | undefined), ...provenanceAnnotations(p) } };
  const bytes = Buffer.from(JSON.stringify(annotated));
  const digest = sha256(bytes);
  const statement = provenanceStatement(p, { digest, names });
  const { blobs, index } = attestationIndex({ digest, size: bytes.length, mediaType: manifest.mediaType, platform }, statement);
  return { manifest: { bytes, digest, mediaType: manifest.mediaType }, extra: blobs, index };
}
