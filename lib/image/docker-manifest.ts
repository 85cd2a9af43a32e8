/**
 * OCI manifests and indexes as Docker schema2 manifests and manifest lists, for registries that
 * refuse OCI media types (skopeo's `--format v2s2`): the same blobs, other media types. What a
 * Docker manifest has no field for (annotations, subject, artifactType) is left out; a config or
 * layer type with no Docker counterpart (an artifact) cannot go.
 */
import { ValidationError } from '../errors.js';
import { RegistryError } from './registry/errors.js';
import { DescriptorSchema, ImageManifestSchema, MediaType, type Descriptor } from './registry/manifest.js';

const LAYER: Record<string, string> = {
  'application/vnd.oci.image.layer.v1.tar': 'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'application/vnd.docker.image.rootfs.foreign.diff.tar',
};
const DOCKER_LAYERS = new Set(Object.values(LAYER));

export const isOciType = (mediaType: string): boolean => mediaType === MediaType.ociManifest || mediaType === MediaType.ociIndex;

/**
 * Whether a manifest PUT's failure says the registry does not take this media type: 415, or the
 * 400 MANIFEST_INVALID / UNSUPPORTED a registry that reads only Docker types gives an OCI body.
 */
export function refusesMediaType(err: unknown): boolean {
  if (!(err instanceof RegistryError)) return false;
  if (err.status === 415) return true;
  return err.status === 400 && ['MANIFEST_INVALID', 'MANIFEST_UNSUPPORTED', 'UNSUPPORTED'].includes(err.code ?? '');
}

function dockerDescriptor(d: Descriptor, types: Record<string, string>, keep: ReadonlySet<string>, what: string): Descriptor {
  const mediaType = types[d.mediaType] ?? (keep.has(d.mediaType) ? d.mediaType : undefined);
  if (!mediaType) throw new ValidationError(`a Docker schema2 manifest has no media type for the ${what} type ${d.mediaType}`, 'mediaType');
  return { mediaType, digest: d.digest, size: d.size, ...(d.urls ? { urls: d.urls } : {}) };
}

/** An OCI image manifest (bytes) as a Docker schema2 manifest (bytes). */
export function toDockerManifest(bytes: Buffer): Buffer {
  const m = ImageManifestSchema.parse(JSON.parse(bytes.toString('utf8')));
  const config = dockerDescriptor(m.config, { [MediaType.ociConfig]: MediaType.dockerConfig }, new Set([MediaType.dockerConfig]), 'config');
  const layers = m.layers.map((l) => dockerDescriptor(l, LAYER, DOCKER_LAYERS, 'layer'));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config, layers }));
}

const ListEntrySchema = DescriptorSchema.required({ platform: true });

/** A Docker manifest list of image manifests pushed as Docker schema2 (each with its platform). */
export function dockerManifestList(entries: readonly Descriptor[]): Buffer {
  const manifests = entries.map((e) => {
    const { platform } = ListEntrySchema.parse(e);
    return { mediaType: MediaType.dockerManifest, digest: e.digest, size: e.size, platform };
  });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerList, manifests }));
}
