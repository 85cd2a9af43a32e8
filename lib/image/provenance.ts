/**
 * Provenance: who made an image, when, how and from what. Written at build, commit and import as
 * OCI annotations on the image manifest (org.opencontainers.image.created/source/revision/
 * base.name/base.digest) and as an in-toto statement with a SLSA v0.2 predicate, attached the way
 * BuildKit attaches attestations: an image index holding the image manifest and an attestation
 * manifest (platform unknown/unknown, `vnd.docker.reference.type: attestation-manifest`,
 * `vnd.docker.reference.digest: <image manifest>`) whose one layer is the statement. The index is
 * kept with the image (record.index), pushed with it and fetched with it by pull.
 */
import * as z from 'zod';
import type { ImageRecord, Store } from '../storage/index.js';
import type { Reference } from './reference.js';
import type { RegistryClient } from './registry/registry-client.js';
import { DescriptorSchema, ImageIndexSchema, ImageManifestSchema, type Descriptor, type ImageIndex } from './registry/manifest.js';
import { ATTESTATION, IN_TOTO, REF_DIGEST, REF_TYPE } from './provenance-seal.js';

export * from './provenance-seal.js';

/** Index entries that are attestations of `digest`. */
export function attestationsOf(index: ImageIndex, digest: string): Descriptor[] {
  return index.manifests.filter((m) => m.annotations?.[REF_TYPE] === ATTESTATION && m.annotations[REF_DIGEST] === digest);
}

const statementSchema = z.looseObject({
  _type: z.string(),
  predicateType: z.string(),
  subject: z.array(z.looseObject({ name: z.string(), digest: z.record(z.string(), z.string()) })),
  predicate: z.looseObject({}),
});
export type ProvenanceStatement = z.infer<typeof statementSchema>;

export interface Provenance {
  /** The manifest's annotations (org.opencontainers.image.*). */
  annotations: Record<string, string>;
  /** The in-toto statements attached to the image (its index's attestation manifest), when it has them. */
  statements: ProvenanceStatement[];
  /** The index they were found in. */
  index?: string;
}

/** What the store keeps of an image's provenance: annotations, and statements from its index. */
export async function readProvenance(store: Store, record: ImageRecord): Promise<Provenance> {
  const manifest = ImageManifestSchema.parse(JSON.parse((await store.blobs.read(record.digest)).toString('utf8')));
  const out: Provenance = { annotations: manifest.annotations ?? {}, statements: [] };
  if (!record.index || !(await store.blobs.has(record.index))) return out;
  out.index = record.index;
  const index = ImageIndexSchema.parse(JSON.parse((await store.blobs.read(record.index)).toString('utf8')));
  for (const a of attestationsOf(index, record.digest)) {
    if (!(await store.blobs.has(a.digest))) continue;
    const att = ImageManifestSchema.parse(JSON.parse((await store.blobs.read(a.digest)).toString('utf8')));
    for (const l of att.layers) {
      if (l.mediaType !== IN_TOTO || !(await store.blobs.has(l.digest))) continue;
      out.statements.push(statementSchema.parse(JSON.parse((await store.blobs.read(l.digest)).toString('utf8'))));
    }
  }
  return out;
}

/** The blobs an attestation manifest names (its config and statement layers). */
export function attestationBlobs(manifest: Buffer): Descriptor[] {
  const m = ImageManifestSchema.parse(JSON.parse(manifest.toString('utf8')));
  return [DescriptorSchema.parse(m.config), ...m.layers];
}

/** Fetches the attestation manifests `index` has for `digest`, and their blobs (small JSON), into the store; returns their digests. */
export async function fetchAttestations(client: RegistryClient, reference: Reference, store: Store, index: ImageIndex, digest: string, signal: AbortSignal | undefined): Promise<string[]> {
  const out: string[] = [];
  for (const a of attestationsOf(index, digest)) {
    const m = await client.fetchManifest(reference, { expect: a, ...(signal ? { signal } : {}) });
    if (!(await store.blobs.has(m.digest))) await store.blobs.ingest(m.bytes, m.digest);
    out.push(m.digest);
    for (const d of attestationBlobs(m.bytes)) {
      if (!(await store.blobs.has(d.digest))) await store.blobs.ingest(await client.readBlob(reference, d, { maxBytes: 16 << 20, ...(signal ? { signal } : {}) }), d.digest);
      out.push(d.digest);
    }
  }
  return out;
}
