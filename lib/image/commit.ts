/**
 * Commits an image whose blobs are files to the store, shared by both archive formats of `load`,
 * by `import`, and by the builder to come (lib/build): ingest its blobs (each checked against its
 * digest), unpack its layers by chain id as `Image.pull` does (the diff id from the config checked
 * against the tar), then write the image record under its names.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { open } from 'node:fs/promises';
import { reportCleanupError } from '../errors.js';
import { chainIds, DigestMismatchError, sniffCompression, type Store, type TagMove } from '../storage/index.js';
import type { ImageConfig } from './registry/manifest.js';
import type { Member } from './archive/archive-files.js';

export interface ArchiveLayer {
  digest: string;
  mediaType: string;
  size: number;
  /** Where the blob's bytes are in the archive. */
  member: Member;
}

/** One image read from an archive, verified as far as can be without unpacking. */
export interface ArchiveImage {
  manifest: { bytes: Buffer; digest: string; mediaType: string };
  config: { bytes: Buffer; digest: string; parsed: ImageConfig };
  layers: ArchiveLayer[];
  /** Blobs kept with the image: the index it was chosen from. */
  extra: Array<{ bytes: Buffer; digest: string }>;
  /** Fully qualified names the archive gives it. */
  names: string[];
  /** An OCI `ref.name` that is only a tag: used with the caller's name. */
  bareTag?: string;
  /** The index kept with the image (one of `extra`): its provenance's (provenance.ts), or the one its platform was chosen from. */
  index?: string;
  /** Another platform of that index, loaded beside the image `platformOf` (not told as an image loaded). */
  platformOf?: string;
}

export interface LoadedImage {
  /** The manifest digest (for a docker-archive: of the schema2 manifest made for it). */
  digest: string;
  names: string[];
}

/** Stores one image; call it holding the store's lease. */
export async function commitImage(store: Store, img: ArchiveImage, names: string[], how: TagMove = { by: 'load' }): Promise<LoadedImage> {
  const small = [img.manifest, img.config, ...img.extra];
  for (const b of small) if (!(await store.blobs.has(b.digest))) await store.blobs.ingest(b.bytes, b.digest, b.bytes.length);
  const diffIds = img.config.parsed.rootfs.diff_ids;
  const chain = chainIds(diffIds);
  const layers = [];
  for (const [i, l] of img.layers.entries()) {
    const chainId = chain[i]!;
    const diffId = diffIds[i]!;
    const had = await store.blobs.has(l.digest);
    if (!had) await store.blobs.ingestFile(l.member.file, l.digest, l.size);
    if (!(await store.layers.has(chainId))) {
      await store.layers.unpack(chainId, store.blobs.path(l.digest), {
        diffId,
        blobDigest: l.digest,
        mediaType: l.mediaType,
        ...(i > 0 ? { parentChainId: chain[i - 1]! } : {}),
      });
    } else if (!had && l.digest !== diffId) {
      // The layer is here already, unpacked from another blob: this one must still be the same tar.
      const actual = await tarDigest(store.blobs.path(l.digest));
      if (actual !== undefined && actual !== diffId) {
        await store.blobs.remove(l.digest).catch(reportCleanupError(`blob ${l.digest}: removing it after its tar did not match`));
        throw new DigestMismatchError(`layer ${l.digest}: its tar hashes to ${actual}, but the config's diff id is ${diffId}`, diffId, actual);
      }
    }
    layers.push({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId, chainId });
  }
  const cfg = img.config.parsed;
  const record = await store.images.put(
    {
      digest: img.manifest.digest,
      mediaType: img.manifest.mediaType,
      config: img.config.digest,
      layers,
      extraBlobs: img.extra.map((e) => e.digest),
      platform: { os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) },
      ...(cfg.created ? { created: cfg.created } : {}),
      addedAt: new Date().toISOString(),
      ...(img.index ? { index: img.index } : {}),
    },
    names,
    how,
  );
  return { digest: record.digest, names };
}

/** sha256 of a layer blob's uncompressed tar (its diff id); undefined for zstd, which Node 20 cannot read. */
export async function tarDigest(file: string): Promise<string | undefined> {
  const compression = await blobCompression(file);
  if (compression === 'zstd') return undefined;
  const hash = createHash('sha256');
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb();
    },
  });
  if (compression === 'gzip') await pipeline(createReadStream(file), createGunzip(), sink);
  else await pipeline(createReadStream(file), sink);
  return `sha256:${hash.digest('hex')}`;
}

/** How a layer blob is compressed, from its first bytes. */
export async function blobCompression(file: string): Promise<ReturnType<typeof sniffCompression>> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(6);
    await fh.read(head, 0, 6, 0);
    return sniffCompression(head);
  } finally {
    await fh.close();
  }
}

/** blobCompression on this thread (six bytes: a push checks its layers with it before its first request). */
export function blobCompressionSync(file: string): ReturnType<typeof sniffCompression> {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(6);
    readSync(fd, head, 0, 6, 0);
    return sniffCompression(head);
  } finally {
    closeSync(fd);
  }
}
