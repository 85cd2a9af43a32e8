/**
 * `loadImages`: docker-archive and oci-archive tars (gzipped or not, from a file or a stream) and OCI
 * layout directories into the store. A tar is spooled into the store's tmp dir and every member
 * hashed on the way, so every digest is checked before anything is written to the store; the spool
 * is removed whatever happens.
 */
import { stat } from 'node:fs/promises';
import { NotFoundError, ValidationError } from '../../errors.js';
import type { Store } from '../../storage/index.js';
import { parseReference } from '../reference.js';
import { hostPlatform, parsePlatform, type PlatformSpec } from '../registry/platform.js';
import { ArchiveError } from './archive-error.js';
import { DirectorySource, fileSource, SpooledArchive, type MemberSource } from './archive-files.js';
import { commitImage, type ArchiveImage, type LoadedImage } from '../commit.js';
import { isDockerArchive, readDockerArchive } from './docker-archive.js';
import { isOciLayout, readOciLayout } from './oci-layout.js';

export type { LoadedImage } from '../commit.js';

export interface LoadOptions {
  /**
   * A name for the image: for an archive that names none (an OCI ref.name that is only a tag, which
   * then becomes this name's tag unless the name has one), or a name added to those it has. Only for
   * an archive with one image.
   */
  name?: string;
  /** Which image of a multi-platform index to load; default: this host's. */
  platform?: PlatformSpec | string;
}

export type ArchiveSource = string | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

export async function loadImages(store: Store, source: ArchiveSource, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  if (opts.name !== undefined) parseReference(opts.name);
  const platform = opts.platform === undefined ? hostPlatform() : parsePlatform(opts.platform);
  return store.withLease(async () => {
    let spool: SpooledArchive | undefined;
    try {
      let src: MemberSource;
      if (typeof source === 'string') {
        const st = await stat(source).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') throw new NotFoundError(`image archive ${source} does not exist`, { path: source, cause: err });
          throw err;
        });
        if (st.isDirectory()) {
          src = new DirectorySource(source);
          if (!isOciLayout(src)) throw new ArchiveError(`${source}: not an OCI layout directory (no oci-layout and index.json)`, { path: source });
        } else {
          src = spool = await SpooledArchive.read(fileSource(source), store.layout.tmpDir, source);
        }
      } else {
        src = spool = await SpooledArchive.read(source as AsyncIterable<Uint8Array>, store.layout.tmpDir, 'image archive stream');
      }
      let images: ArchiveImage[];
      if (isOciLayout(src)) images = await readOciLayout(src, platform);
      else if (isDockerArchive(src)) images = await readDockerArchive(src);
      else throw new ArchiveError(`${src.where}: not a docker-archive (no manifest.json) or an oci-archive (no oci-layout and index.json)`);
      const told = images.filter((img) => !img.platformOf);
      if (opts.name !== undefined && told.length > 1) {
        throw new ValidationError(`name: the archive holds ${told.length} images; a name can only be given to one`, 'name');
      }
      const out: LoadedImage[] = [];
      // other platforms first: the named image's record is the last written
      for (const img of images.filter((i) => i.platformOf)) await commitImage(store, img, []);
      for (const img of told) out.push(await commitImage(store, img, namesFor(img, opts.name)));
      return out;
    } finally {
      await spool?.dispose();
    }
  });
}

function namesFor(img: ArchiveImage, name: string | undefined): string[] {
  if (name === undefined) return img.names;
  // 'app' takes the archive's bare tag; 'app:1' (or 'host:5000/app:1') is used as it is.
  const explicit = /:[^/]*$/.test(name) || name.includes('@');
  const ref = parseReference(explicit || !img.bareTag ? name : `${name}:${img.bareTag}`);
  return [...new Set([...img.names, ref.toString()])];
}
