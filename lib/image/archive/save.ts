/**
 * `saveImage`: one image of the store as a docker-archive (what `docker load` and skopeo's
 * `docker-archive:` read: manifest.json, `<hex>.json` config, uncompressed `<diff id>.tar` layers) or
 * an oci-archive (an OCI layout in a tar, blobs as stored). Written to a temp file next to `dest`
 * and renamed over it, so `dest` is either the whole archive or untouched.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { NsboxError, ValidationError, reportCleanupError } from '../../errors.js';
import { DigestMismatchError, type ImageRecord, type Store } from '../../storage/index.js';
import { parseReference } from '../reference.js';
import { ArchiveError } from './archive-error.js';
import { blobCompression } from '../commit.js';
import type { DockerManifest } from './docker-archive.js';
import { IMAGE_NAME, REF_NAME } from './oci-layout.js';
import { TarWriter } from '../../storage/tar-writer.js';
import { MediaType } from '../registry/manifest.js';

export type ArchiveFormat = 'docker' | 'oci';

export interface SaveOptions {
  /** 'docker' (docker-archive, the default) or 'oci' (oci-archive). */
  format?: ArchiveFormat;
}

export interface SavedImage {
  record: ImageRecord;
  /** Fully qualified names; the tagged ones go into the archive. */
  names: readonly string[];
}

const hexOf = (digest: string) => digest.slice('sha256:'.length);

export async function saveImage(store: Store, image: SavedImage, dest: string, opts: SaveOptions = {}): Promise<void> {
  const format = opts.format ?? 'docker';
  if (format !== 'docker' && format !== 'oci') throw new ValidationError(`format: "${String(format)}" is not 'docker' or 'oci'`, 'format');
  const target = path.resolve(dest);
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.nsbox-${randomBytes(6).toString('hex')}`);
  const work = path.join(store.layout.tmpDir, `blob-save-${randomBytes(6).toString('hex')}`);
  await store.withLease(async () => {
    const fh = await open(tmp, 'wx', 0o644).catch((err: NodeJS.ErrnoException) => {
      throw new NsboxError(`save image to ${target}: ${err.code ?? err.message}`, { code: err.code ?? 'ERR_NSBOX', path: target, cause: err });
    });
    let closed = false;
    try {
      const tar = new TarWriter(fh);
      if (format === 'docker') await writeDocker(store, image, tar, work);
      else await writeOci(store, image, tar);
      await tar.end();
      await fh.sync();
      await fh.close();
      closed = true;
      await rename(tmp, target);
    } catch (err) {
      if (!closed) await fh.close().catch(reportCleanupError(`${tmp}: closing it after a failed save`));
      await rm(tmp, { force: true });
      throw err;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

function tagged(names: readonly string[]): string[] {
  return names.filter((n) => parseReference(n).digest === undefined);
}

async function writeDocker(store: Store, image: SavedImage, tar: TarWriter, work: string): Promise<void> {
  const { record } = image;
  const written = new Set<string>();
  const layerNames: string[] = [];
  for (const l of record.layers) {
    const name = `${hexOf(l.diffId)}.tar`;
    layerNames.push(name);
    if (written.has(name)) continue;
    written.add(name);
    const blob = store.blobs.path(l.digest);
    const size = await store.blobs.size(l.digest);
    const compression = await blobCompression(blob);
    if (compression === 'none') {
      if (l.digest !== l.diffId) throw new DigestMismatchError(`layer ${l.digest}: an uncompressed blob whose diff id is ${l.diffId}`, l.diffId, l.digest);
      await tar.file(name, blob, size);
      continue;
    }
    if (compression !== 'gzip') {
      throw new ArchiveError(`layer ${l.digest} is ${compression}-compressed: a docker-archive needs it uncompressed, and this Node cannot decompress it`, { code: 'ENOTSUP' });
    }
    // docker load wants plain tars: decompress (checking the diff id) to a temp file, then copy it in.
    await mkdir(work, { recursive: true, mode: 0o700 });
    const plain = path.join(work, name);
    const hash = createHash('sha256');
    let plainSize = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        plainSize += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(createReadStream(blob, { highWaterMark: 1 << 20 }), createGunzip(), tap, createWriteStream(plain));
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== l.diffId) throw new DigestMismatchError(`layer ${l.digest}: its tar hashes to ${actual}, not its diff id ${l.diffId}`, l.diffId, actual);
    await tar.file(name, plain, plainSize);
    await rm(plain, { force: true });
  }
  const configName = `${hexOf(record.config)}.json`;
  await tar.bytes(configName, await store.blobs.read(record.config));
  const manifest: DockerManifest = [{ Config: configName, RepoTags: tagged(image.names), Layers: layerNames }];
  await tar.bytes('manifest.json', Buffer.from(JSON.stringify(manifest)));
}

async function writeOci(store: Store, image: SavedImage, tar: TarWriter): Promise<void> {
  const { record } = image;
  await tar.bytes('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  const manifestBytes = await store.blobs.read(record.digest);
  const names = tagged(image.names);
  const entry = { mediaType: record.mediaType, digest: record.digest, size: manifestBytes.length };
  // ref.name is the tag (what `skopeo copy oci-archive:file:tag` matches); containerd's annotation keeps the repository.
  const manifests = names.length
    ? names.map((n) => ({ ...entry, annotations: { [IMAGE_NAME]: n, [REF_NAME]: parseReference(n).tag! } }))
    : [entry];
  const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  await tar.bytes('index.json', Buffer.from(JSON.stringify(index)));
  await tar.dir('blobs');
  await tar.dir('blobs/sha256');
  await tar.bytes(`blobs/sha256/${hexOf(record.digest)}`, manifestBytes);
  await tar.bytes(`blobs/sha256/${hexOf(record.config)}`, await store.blobs.read(record.config));
  const written = new Set<string>();
  for (const l of record.layers) {
    if (written.has(l.digest)) continue;
    written.add(l.digest);
    await tar.file(`blobs/sha256/${hexOf(l.digest)}`, store.blobs.path(l.digest), await store.blobs.size(l.digest));
  }
}
