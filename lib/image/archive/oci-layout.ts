/**
 * OCI image layouts (image-spec `image-layout.md`), in a directory or inside an oci-archive tar:
 * `oci-layout`, `index.json` and `blobs/<alg>/<hex>`. Each index.json entry is an image manifest,
 * or a nested index from which this host's platform is chosen as `Image.pull` chooses it; the
 * index's other platforms the layout holds whole come too, unnamed, kept with the same index.
 */
import * as z from 'zod';
import { DigestMismatchError } from '../../storage/index.js';
import { parseReference } from '../reference.js';
import { choosePlatform, formatPlatform, type PlatformSpec } from '../registry/platform.js';
import {
  ImageConfigSchema,
  ImageIndexSchema,
  ImageManifestSchema,
  INDEX_MEDIA_TYPES,
  IMAGE_MEDIA_TYPES,
  MediaType,
  type Descriptor,
} from '../registry/manifest.js';
import { ArchiveError } from './archive-error.js';
import { readMember, type Member, type MemberSource } from './archive-files.js';
import type { ArchiveImage } from '../commit.js';
import { ATTESTATION, REF_DIGEST, REF_TYPE } from '../provenance.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd's (and docker 25's) full image name next to a bare-tag ref.name. */
export const IMAGE_NAME = 'io.containerd.image.name';

const OciLayoutSchema = z.object({ imageLayoutVersion: z.string() }).loose();

export function isOciLayout(src: MemberSource): boolean {
  return src.has('oci-layout') && src.has('index.json');
}

function blobName(digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  if (alg !== 'sha256' || !/^[0-9a-f]{64}$/.test(hex ?? '')) {
    throw new ArchiveError(`blob ${digest}: only sha256 digests are supported`);
  }
  return `blobs/sha256/${hex}`;
}

function parseJson<T>(schema: z.ZodType<T>, data: Buffer, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new ArchiveError(`${what} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new ArchiveError(`${what} is malformed: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { cause: r.error });
  return r.data;
}

/** A blob member, checked against its descriptor where its hash is already known (archive members). */
function blobMember(src: MemberSource, d: Descriptor): Member {
  const name = blobName(d.digest);
  const m = src.get(name);
  if (!m) throw new ArchiveError(`${src.where}: blob ${d.digest} is missing (${name})`);
  if (m.digest !== undefined && m.digest !== d.digest) {
    throw new DigestMismatchError(`${src.where}: ${name} hashes to ${m.digest} (corrupt archive)`, d.digest, m.digest);
  }
  if (m.size !== undefined && m.size !== d.size) {
    throw new DigestMismatchError(`${src.where}: ${name} is ${m.size} bytes, the descriptor says ${d.size}`, d.digest, m.digest ?? 'unknown');
  }
  return m;
}

async function readBlob(src: MemberSource, d: Descriptor): Promise<Buffer> {
  blobMember(src, d);
  const data = await readMember(src, blobName(d.digest), d.digest);
  if (data.length !== d.size) {
    throw new DigestMismatchError(`${src.where}: blob ${d.digest} is ${data.length} bytes, the descriptor says ${d.size}`, d.digest, d.digest);
  }
  return data;
}

/** The images of an OCI layout, every blob they need found (and, in an archive, already verified). */
export async function readOciLayout(src: MemberSource, platform: PlatformSpec): Promise<ArchiveImage[]> {
  const layout = parseJson(OciLayoutSchema, await readMember(src, 'oci-layout'), `${src.where}: oci-layout`);
  if (!layout.imageLayoutVersion.startsWith('1.')) {
    throw new ArchiveError(`${src.where}: OCI layout version ${layout.imageLayoutVersion} is not supported (1.x is)`);
  }
  const index = parseJson(ImageIndexSchema, await readMember(src, 'index.json'), `${src.where}: index.json`);
  const byDigest = new Map<string, ArchiveImage>();
  let skipped = 0;
  for (const top of index.manifests) {
    let desc = top;
    const extra: ArchiveImage['extra'] = [];
    let kept: string | undefined;
    if (INDEX_MEDIA_TYPES.includes(top.mediaType)) {
      const bytes = await readBlob(src, top);
      const nested = parseJson(ImageIndexSchema, bytes, `${src.where}: index ${top.digest}`);
      const chosen = choosePlatform(nested.manifests, platform);
      if (!chosen) {
        const have = nested.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ');
        throw new ArchiveError(`${src.where}: index ${top.digest} has no image for ${formatPlatform(platform)} (it has ${have || 'none'})`);
      }
      desc = chosen;
      kept = top.digest;
      extra.push({ bytes, digest: top.digest });
      // The index's other platforms the layout holds whole, as unnamed records kept with the same
      // index (as a pull of each with --platform keeps them): a push of the image sends the index.
      for (const m of nested.manifests) {
        if (m.digest === chosen.digest || byDigest.has(m.digest) || !IMAGE_MEDIA_TYPES.includes(m.mediaType) || m.annotations?.[REF_TYPE] === ATTESTATION) continue;
        const other = await wholeImage(src, m);
        if (other) byDigest.set(m.digest, { ...other, extra: [{ bytes, digest: top.digest }], names: [], index: top.digest, platformOf: chosen.digest });
      }
      // Attestations (BuildKit's provenance) of the platforms loaded: their blobs kept with the index's image.
      for (const m of nested.manifests) {
        if (m.annotations?.[REF_TYPE] !== ATTESTATION) continue;
        const subject = m.annotations[REF_DIGEST];
        if (subject !== chosen.digest && !byDigest.get(subject ?? '')?.platformOf) continue;
        extra.push(...(await attestationBlobs(src, m)));
      }
    } else if (!IMAGE_MEDIA_TYPES.includes(top.mediaType)) {
      skipped++; // attestations, artifacts: not images
      continue;
    } else if (top.platform && !choosePlatform([top], platform)) {
      skipped++;
      continue;
    }
    const names = namesOf(top.annotations ?? {});
    const seen = byDigest.get(desc.digest);
    if (seen) {
      delete seen.platformOf; // an image of its own too
      seen.names = [...new Set([...seen.names, ...names.full])];
      if (names.bareTag) seen.bareTag ??= names.bareTag;
      for (const e of extra) if (!seen.extra.some((x) => x.digest === e.digest)) seen.extra.push(e);
      continue;
    }
    byDigest.set(desc.digest, {
      ...(await readImage(src, desc)),
      extra,
      names: names.full,
      ...(names.bareTag ? { bareTag: names.bareTag } : {}),
      ...(kept ? { index: kept } : {}),
    });
  }
  if (byDigest.size === 0) {
    throw new ArchiveError(`${src.where}: the OCI layout holds no image${skipped ? ` for ${formatPlatform(platform)}` : ''}`);
  }
  return [...byDigest.values()];
}

type ImageParts = Pick<ArchiveImage, 'manifest' | 'config' | 'layers'>;

async function readImage(src: MemberSource, desc: Descriptor): Promise<ImageParts> {
  const manifestBytes = await readBlob(src, desc);
  const manifest = parseJson(ImageManifestSchema, manifestBytes, `${src.where}: manifest ${desc.digest}`);
  const configBytes = await readBlob(src, manifest.config);
  const config = parseJson(ImageConfigSchema, configBytes, `${src.where}: config ${manifest.config.digest}`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new ArchiveError(`${src.where}: manifest ${desc.digest} has ${manifest.layers.length} layers but its config ${config.rootfs.diff_ids.length} diff ids`);
  }
  const layers = manifest.layers.map((l) => {
    if (l.urls?.length && !src.has(blobName(l.digest))) {
      throw new ArchiveError(`${src.where}: layer ${l.digest} is a foreign layer (only at ${l.urls[0]}); nsbox does not fetch those`);
    }
    return { digest: l.digest, mediaType: l.mediaType, size: l.size, member: blobMember(src, l) };
  });
  return {
    manifest: { bytes: manifestBytes, digest: desc.digest, mediaType: manifest.mediaType ?? desc.mediaType ?? MediaType.ociManifest },
    config: { bytes: configBytes, digest: manifest.config.digest, parsed: config },
    layers,
  };
}

/** An image of an index when the layout holds its manifest, config and every layer (a layout may hold some platforms only). */
async function wholeImage(src: MemberSource, desc: Descriptor): Promise<ImageParts | undefined> {
  if (!src.has(blobName(desc.digest))) return undefined;
  const manifest = parseJson(ImageManifestSchema, await readBlob(src, desc), `${src.where}: manifest ${desc.digest}`);
  if (![manifest.config, ...manifest.layers].every((d) => src.has(blobName(d.digest)))) return undefined;
  return readImage(src, desc);
}

/** An attestation manifest and its blobs, when the layout holds them all. */
async function attestationBlobs(src: MemberSource, desc: Descriptor): Promise<ArchiveImage['extra']> {
  if (!src.has(blobName(desc.digest))) return [];
  const bytes = await readBlob(src, desc);
  const m = parseJson(ImageManifestSchema, bytes, `${src.where}: attestation ${desc.digest}`);
  const parts = [m.config, ...m.layers];
  if (!parts.every((d) => src.has(blobName(d.digest)))) return [];
  return [{ bytes, digest: desc.digest }, ...(await Promise.all(parts.map(async (d) => ({ bytes: await readBlob(src, d), digest: d.digest }))))];
}

/**
 * Names from an index entry's annotations: containerd's full image name, or a ref.name that is a
 * full reference (`busybox:1`, `host:5000/a`); a ref.name that is only a tag (`latest`, `v1`) names
 * no repository, so it is kept aside for the caller's name.
 */
export function namesOf(annotations: Record<string, string>): { full: string[]; bareTag?: string } {
  const full: string[] = [];
  let bareTag: string | undefined;
  const image = annotations[IMAGE_NAME];
  if (image) full.push(parseRef(image, IMAGE_NAME));
  const ref = annotations[REF_NAME];
  if (ref) {
    if (/[/:@]/.test(ref)) {
      if (!image) full.push(parseRef(ref, REF_NAME));
    } else if (/^[\w][\w.-]{0,127}$/.test(ref)) {
      bareTag = ref;
    }
  }
  return { full, ...(bareTag ? { bareTag } : {}) };
}

function parseRef(s: string, what: string): string {
  try {
    return parseReference(s).toString();
  } catch (err) {
    throw new ArchiveError(`annotation ${what}: ${(err as Error).message}`, { cause: err });
  }
}
