/**
 * Content: blobs addressed by their sha256 digest under blobs/sha256/<hex>. A blob is written to a
 * temp file in tmp/, hashed and counted while it is written, checked against the digest (and size)
 * it was asked for, fsynced and only then renamed into blobs/: a reader never sees half a blob.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsc, createReadStream, openSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { NotFoundError } from '../errors.js';
import { fsyncDirAsync, withLock } from './atomic.js';
import { parseDigest } from './digest.js';
import { DigestMismatchError, fsError, isCode } from './errors.js';
import type { StoreLayout } from './layout.js';

export type BlobSource = Readable | AsyncIterable<Uint8Array> | Uint8Array;

export interface BlobInfo {
  digest: string;
  size: number;
  path: string;
}

export class BlobStore {
  readonly layout: StoreLayout;
  constructor(layout: StoreLayout) {
    this.layout = layout;
  }

  async init(): Promise<void> {
    await mkdir(this.layout.blobsDir, { recursive: true });
    await mkdir(this.layout.tmpDir, { recursive: true });
  }

  path(digest: string): string {
    return this.layout.blob(digest);
  }

  async has(digest: string): Promise<boolean> {
    try {
      return (await stat(this.path(digest))).isFile();
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false;
      throw fsError(err, 'stat', this.path(digest));
    }
  }

  /**
   * has() without the thread pool: one stat on this thread, for a caller that checks a few blobs
   * on its critical path (a push's end), where each pool round trip waits its turn behind others.
   */
  hasSync(digest: string): boolean {
    try {
      return statSync(this.path(digest)).isFile();
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false;
      throw fsError(err, 'stat', this.path(digest));
    }
  }

  /** The blob's size in bytes; NotFoundError when absent. */
  async size(digest: string): Promise<number> {
    try {
      return (await stat(this.path(digest))).size;
    } catch (err) {
      throw this.#missing(err, digest);
    }
  }

  /** A stream of the blob's bytes; NotFoundError when absent. */
  async open(digest: string): Promise<Readable> {
    const file = this.path(digest);
    try {
      const fd = openSync(file, fsc.O_RDONLY);
      return createReadStream(file, { fd, highWaterMark: 1 << 20 });
    } catch (err) {
      throw this.#missing(err, digest);
    }
  }

  /** A small blob (manifest, config) read whole and checked against its digest on the way. */
  async read(digest: string): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await readFile(this.path(digest));
    } catch (err) {
      throw this.#missing(err, digest);
    }
    return this.#checked(data, digest);
  }

  /**
   * read() on this thread: for the few small JSON blobs (manifests, configs, attestations, a few
   * KB) a push reads before its first request, where readFile's four thread-pool round trips each
   * (open, fstat, read, close) waited their turn on a busy machine. Not for layers.
   */
  readSmall(digest: string): Buffer {
    let data: Buffer;
    try {
      data = readFileSync(this.path(digest));
    } catch (err) {
      throw this.#missing(err, digest);
    }
    return this.#checked(data, digest);
  }

  #checked(data: Buffer, digest: string): Buffer {
    const actual = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (actual !== digest) {
      throw new DigestMismatchError(`blob ${digest} in the store is corrupt (its content hashes to ${actual})`, digest, actual, {
        path: this.path(digest),
      });
    }
    return data;
  }

  /**
   * Stores the bytes of `source` as blob `expected` if and only if they hash to it (and, when given,
   * count `expectedSize`). On any failure (mismatch, a source that errors or ends early) the temp file
   * is removed and nothing appears under blobs/.
   */
  async ingest(source: BlobSource, expected: string, expectedSize?: number): Promise<BlobInfo> {
    parseDigest(expected);
    return withLock(this.layout.leaseLock, () => this.#ingest(source, expected, expectedSize), { shared: true });
  }

  /** ingest() from a file (an OCI layout, a docker-archive member). */
  async ingestFile(file: string, expected: string, expectedSize?: number): Promise<BlobInfo> {
    return this.ingest(createReadStream(file, { highWaterMark: 1 << 20 }), expected, expectedSize);
  }

  /**
   * Takes `file` as blob `digest` by renaming it into place: for a file this process wrote, fsynced
   * and hashed on the way (a build's layer tar), so neither copied nor read again. The file must be
   * in the store's tmp directory (the same file system); it is gone afterwards either way.
   */
  async adoptFile(file: string, digest: string, size: number): Promise<BlobInfo> {
    parseDigest(digest);
    return withLock(
      this.layout.leaseLock,
      async () => {
        await this.init();
        const final = this.path(digest);
        try {
          await chmod(file, 0o644);
          await mkdir(this.layout.blobsDir, { recursive: true });
          await rename(file, final);
          await fsyncDirAsync(this.layout.blobsDir);
        } catch (err) {
          await rm(file, { force: true });
          throw fsError(err, `adopt blob ${digest} from`, file);
        }
        return { digest, size, path: final };
      },
      { shared: true },
    );
  }

  async #ingest(source: BlobSource, expected: string, expectedSize: number | undefined): Promise<BlobInfo> {
    await this.init();
    const tmp = path.join(this.layout.tmpDir, `blob-${expected.slice(7, 19)}-${randomBytes(6).toString('hex')}`);
    const final = this.path(expected);
    const hash = createHash('sha256');
    let size = 0;
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644);
      const input: AsyncIterable<Uint8Array> = source instanceof Uint8Array ? [source] as unknown as AsyncIterable<Uint8Array> : source;
      for await (const chunk of input) {
        size += chunk.length;
        if (expectedSize !== undefined && size > expectedSize) {
          throw new DigestMismatchError(`blob ${expected}: more than the expected ${expectedSize} bytes`, expected, 'unknown');
        }
        hash.update(chunk);
        await fh.write(chunk);
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (expectedSize !== undefined && size !== expectedSize) {
        throw new DigestMismatchError(`blob ${expected}: got ${size} bytes, expected ${expectedSize}`, expected, actual);
      }
      if (actual !== expected) {
        throw new DigestMismatchError(`blob ${expected}: the content hashes to ${actual}`, expected, actual);
      }
      await fh.sync();
      await fh.close();
      fh = undefined;
      await mkdir(this.layout.blobsDir, { recursive: true });
      await rename(tmp, final);
      await fsyncDirAsync(this.layout.blobsDir);
      return { digest: expected, size, path: final };
    } catch (err) {
      await fh?.close();
      if (source instanceof Readable) source.destroy();
      await rm(tmp, { force: true });
      // the source's own errors (a broken download) pass through as they are
      if (err instanceof DigestMismatchError || (err as NodeJS.ErrnoException).syscall === undefined) throw err;
      throw fsError(err, `ingest blob ${expected} into`, tmp);
    }
  }

  /** Removes a blob; false when it was not there. */
  async remove(digest: string): Promise<boolean> {
    try {
      await rm(this.path(digest));
      return true;
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false;
      throw fsError(err, 'remove', this.path(digest));
    }
  }

  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.layout.blobsDir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return [];
      throw fsError(err, 'list', this.layout.blobsDir);
    }
    return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** Start-up repair: temp files of ingests that never finished. Call it holding the lease exclusively. */
  async repair(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.layout.tmpDir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return [];
      throw fsError(err, 'list', this.layout.tmpDir);
    }
    const removed = names.filter((n) => n.startsWith('blob-')).map((n) => path.join(this.layout.tmpDir, n));
    await Promise.all(removed.map((f) => rm(f, { force: true, recursive: true })));
    return removed;
  }

  #missing(err: unknown, digest: string) {
    if (isCode(err, 'ENOENT')) return new NotFoundError(`blob ${digest} is not in the store`, { path: this.path(digest), cause: err });
    return fsError(err, 'open', this.path(digest));
  }
}
