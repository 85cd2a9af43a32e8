/**
 * docker-archive (`docker save`, `skopeo copy … docker-archive:`): `manifest.json` lists each image's
 * config file, RepoTags and layer tars (named `<diff id>.tar`, `<v1 id>/layer.tar` or, from Docker
 * 25, `blobs/sha256/<hex>`); the legacy `repositories` file is ignored. The stored blob of a layer
 * is its tar as found (plain or gzip), and the image gets a schema2 manifest made for it here.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import * as z from 'zod';
import { DigestMismatchError } from '../../storage/index.js';
import { parseReference } from '../reference.js';
import { ImageConfigSchema, MediaType } from '../registry/manifest.js';
import { ArchiveError } from './archive-error.js';
import { readMember, type Member, type MemberSource } from './archive-files.js';
import { blobCompression, type ArchiveImage } from '../commit.js';

export const DockerLayerMediaType = {
  tar: 'application/vnd.docker.image.rootfs.diff.tar',
  gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  zstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
} as const;

export const DockerManifestSchema = z
  .array(
    z
      .object({
        Config: z.string().min(1),
        RepoTags: z.array(z.string()).nullish(),
        Layers: z.array(z.string().min(1)),
      })
      .loose(),
  )
  .min(1, 'no images');
export type DockerManifest = z.infer<typeof DockerManifestSchema>;

export function isDockerArchive(src: MemberSource): boolean {
  return src.has('manifest.json');
}

/** The hex a member's name claims for it: `<hex>.tar`, `<hex>.json`, `blobs/sha256/<hex>`. */
function claimedHex(name: string): string | undefined {
  return /^([0-9a-f]{64})(?:\.tar|\.json)?$/.exec(path.posix.basename(name))?.[1];
}

async function digestOf(m: Member): Promise<{ digest: string; size: number }> {
  if (m.digest !== undefined && m.size !== undefined) return { digest: m.digest, size: m.size };
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(m.file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  m.digest = `sha256:${hash.digest('hex')}`;
  m.size = size;
  return { digest: m.digest, size };
}

export async function readDockerArchive(src: MemberSource): Promise<ArchiveImage[]> {
  let json: unknown;
  try {
    json = JSON.parse((await readMember(src, 'manifest.json')).toString('utf8'));
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(`${src.where}: manifest.json is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = DockerManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new ArchiveError(`${src.where}: manifest.json is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const out: ArchiveImage[] = [];
  for (const entry of parsed.data) {
    const configMember = src.get(entry.Config);
    if (!configMember) throw new ArchiveError(`${src.where}: config ${entry.Config} named by manifest.json is missing`);
    const { digest: configDigest } = await digestOf(configMember);
    const configBytes = await readMember(src, entry.Config, configDigest);
    const hex = claimedHex(entry.Config);
    if (hex !== undefined && `sha256:${hex}` !== configDigest) {
      throw new DigestMismatchError(`${src.where}: config ${entry.Config} hashes to ${configDigest} (corrupt archive)`, `sha256:${hex}`, configDigest);
    }
    let config;
    try {
      config = ImageConfigSchema.parse(JSON.parse(configBytes.toString('utf8')));
    } catch (err) {
      throw new ArchiveError(`${src.where}: config ${entry.Config} is not an image config: ${(err as Error).message}`, { cause: err });
    }
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== entry.Layers.length) {
      throw new ArchiveError(`${src.where}: manifest.json lists ${entry.Layers.length} layers for ${entry.Config} but its config ${diffIds.length} diff ids`);
    }
    const layers: ArchiveImage['layers'] = [];
    for (const [i, name] of entry.Layers.entries()) {
      const member = src.get(name);
      if (!member) throw new ArchiveError(`${src.where}: layer ${name} named by manifest.json is missing`);
      const { digest, size } = await digestOf(member);
      const compression = await blobCompression(member.file);
      if (compression === 'bzip2' || compression === 'xz') throw new ArchiveError(`${src.where}: layer ${name} is ${compression}-compressed (not supported)`);
      const diffId = diffIds[i]!;
      // A plain tar is its own diff id; a compressed one is checked against it when unpacked.
      if (compression === 'none' && digest !== diffId) {
        throw new DigestMismatchError(`${src.where}: layer ${name} hashes to ${digest}, but the config's diff id is ${diffId} (corrupt archive)`, diffId, digest);
      }
      const claimed = claimedHex(name);
      if (claimed !== undefined && `sha256:${claimed}` !== digest && `sha256:${claimed}` !== diffId) {
        throw new DigestMismatchError(`${src.where}: layer ${name} hashes to ${digest}, not the digest its name says (corrupt archive)`, `sha256:${claimed}`, digest);
      }
      layers.push({ digest, size, mediaType: DockerLayerMediaType[compression === 'none' ? 'tar' : compression], member });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: configDigest },
      layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 3));
    const names = (entry.RepoTags ?? []).map((t) => {
      try {
        return parseReference(t).toString();
      } catch (err) {
        throw new ArchiveError(`${src.where}: manifest.json RepoTags: ${(err as Error).message}`, { cause: err });
      }
    });
    out.push({
      manifest: { bytes: manifestBytes, digest: `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`, mediaType: MediaType.dockerManifest },
      config: { bytes: configBytes, digest: configDigest, parsed: config },
      layers,
      extra: [],
      names,
    });
  }
  return out;
}
