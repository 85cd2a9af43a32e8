/**
 * Download one blob to a file: stream into a temp file next to the destination while hashing,
 * check size and digest, fsync, rename. Network errors, 5xx and a body cut short are retried with
 * backoff (resuming with `Range` when the server allows it); the temp file never outlives a failure.
 * A tee gets the same bytes as they land (a pull unpacks the layer in the same pass).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ValidationError } from '../../errors.js';
import { DigestMismatchError, RegistryError } from './errors.js';
import { loadGot } from '../../load-got.js';
import type { Descriptor } from './manifest.js';
import { isTransientCode, withRetries, type RetryPolicy } from './retry.js';
import type { HttpResponse, RegistryTransport } from './transport.js';

export interface BlobProgress {
  digest: string;
  /**
   * 'downloading' while bytes arrive, 'retrying' after a failed attempt, 'done' once renamed into
   * place (with a tee: once every byte arrived and the digest matched, before the tee's own check).
   */
  phase: 'downloading' | 'retrying' | 'done';
  /** Bytes received and verified so far (resets to 0 when a retry starts over). */
  done: number;
  total: number;
  attempt: number;
}

/**
 * A second consumer of the blob's bytes. It sees each byte once, in order from the first: a retry
 * that resumes with `Range` carries on where it stopped (the bytes are the same bytes), but one
 * that starts over (the server ignored the range) or that follows a failed write abandons it.
 */
export interface BlobTee {
  /** The next bytes; a returned promise holds the download back. A failure stops feeding the tee
   *  and, once the blob's digest is checked (a tampered blob is a DigestMismatchError first), fails the download. */
  write(chunk: Buffer): void | Promise<void>;
  /** Every byte arrived and the digest matched: the tee's own check, run before the blob is renamed into place. */
  verify(): Promise<void>;
  /** Its bytes are void; it is given no more. */
  abandon(): void;
}

export interface FetchBlobOptions {
  onProgress?: ((p: BlobProgress) => void) | undefined;
  signal?: AbortSignal | undefined;
  tee?: BlobTee | undefined;
}

const HASHES = new Set(['sha256', 'sha512']);
const PROGRESS_INTERVAL_MS = 100;
/** Bytes received while a disk write is in flight before the socket is paused. */
const SINK_BUFFER = 4 << 20;

/** The node:crypto hash for a digest's algorithm (`sha256:…`). */
export function hashFor(digest: string): Hash {
  const algo = digest.slice(0, digest.indexOf(':'));
  if (!HASHES.has(algo)) throw new ValidationError(`unsupported digest algorithm ${JSON.stringify(algo)} in ${digest}`, 'digest');
  return createHash(algo);
}

export function digestOf(bytes: Buffer, algo = 'sha256'): string {
  return `${algo}:${createHash(algo).update(bytes).digest('hex')}`;
}

/** A body shorter than promised; retried, and reported as TRUNCATED when retries run out. */
class Truncated extends Error {
  constructor(readonly got: number) {
    super('truncated');
  }
}

/** A tee's failure, kept apart from the download's own so that it is not retried. */
class TeeFailed extends Error {
  constructor(override readonly cause: unknown) {
    super('tee failed');
  }
}

async function removeTemp(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    // never created (the open failed) or already renamed away
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Makes the rename durable; a file system that cannot sync a directory (EINVAL) has nothing to sync. */
async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  } finally {
    await fh.close();
  }
}

export async function fetchBlobToFile(
  transport: RegistryTransport,
  repoPath: string,
  descriptor: Descriptor,
  destPath: string,
  op: string,
  retry: RetryPolicy,
  opts: FetchBlobOptions = {},
): Promise<void> {
  const { digest, size } = descriptor;
  const short = digest.slice(0, 19);
  const scopes = [`repository:${repoPath}:pull`];
  const url = `/v2/${repoPath}/blobs/${digest}`;
  const tmp = join(dirname(destPath), `.${basename(destPath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const { signal, onProgress } = opts;
  let tee = opts.tee;
  /** Bytes given to the tee: equal to `written` while it may go on. */
  let teed = 0;
  let teeError: unknown;
  const dropTee = () => {
    tee?.abandon();
    tee = undefined;
  };

  // Hashed bytes are exactly the bytes on disk (the hash is updated after each write lands), so
  // a retry can resume with `Range` where the last attempt stopped.
  let hash = hashFor(digest);
  let written = 0;
  let lastReport = 0;
  let fh: FileHandle | undefined;
  const report = (phase: BlobProgress['phase'], attempt: number, force = false) => {
    if (!onProgress) return;
    const now = Date.now();
    if (!force && now - lastReport < PROGRESS_INTERVAL_MS) return;
    lastReport = now;
    onProgress({ digest, phase, done: written, total: size, attempt });
  };
  const restart = async () => {
    hash = hashFor(digest);
    written = 0;
    if (teed > 0) dropTee();
    await fh!.truncate(0);
  };

  const attemptOnce = async (attempt: number): Promise<void> => {
    fh ??= await open(tmp, 'w', 0o644);
    // a write that failed after the tee had its bytes: the tee is ahead of the file
    if (teed !== written) dropTee();
    let reauthed = false;
    for (;;) {
      const auth = await transport.authorize(scopes, op, signal);
      const headers: Record<string, string> = { ...auth, accept: '*/*' };
      if (written > 0) headers['range'] = `bytes=${written}-`;
      const { got } = await loadGot();
      const stream = got.stream(transport.url(url), transport.gotOptions('GET', headers, signal));
      let response: HttpResponse;
      try {
        response = await new Promise<HttpResponse>((resolve, reject) => {
          stream.once('response', (r: { statusCode: number; headers: HttpResponse['headers']; url: string }) =>
            resolve({ status: r.statusCode, headers: r.headers, body: Buffer.alloc(0), url: r.url }));
          stream.once('error', reject);
        });
      } catch (err) {
        stream.destroy();
        throw transport.networkError(op, err);
      }
      if (response.status === 401) {
        stream.destroy();
        await transport.onUnauthorized(response, scopes, op, reauthed);
        reauthed = true;
        continue;
      }
      if (response.status !== 200 && response.status !== 206) {
        const chunks: Buffer[] = [];
        try {
          for await (const c of stream) chunks.push(c as Buffer);
        } catch {
          // Any failure reading an error's body (the connection dropped): the status, thrown below, is the failure.
        }
        throw transport.errorFor(`${op}: blob ${short}`, { ...response, body: Buffer.concat(chunks) });
      }
      const range = /^bytes (\d+)-/.exec(String(response.headers['content-range'] ?? ''));
      if (written > 0 && !(response.status === 206 && range && Number(range[1]) === written)) await restart();
      const file = fh;
      // The write in flight: when the response fails mid-way, pipeline gives up without waiting
      // for it, and its bytes must be counted (hash, `written`) before a retry asks for the rest.
      let inflight: Promise<void> = Promise.resolve();
      // Chunks that arrive while a write is in flight gather in the sink's buffer (up to
      // SINK_BUFFER) and go out together as one writev: one thread-pool hop per batch, not one per
      // socket read, and the socket keeps being read while the disk write runs.
      const land = (chunks: Buffer[], cb: (err?: Error | null) => void) => {
        let bytes = 0;
        for (const c of chunks) bytes += c.length;
        if (written + bytes > size) {
          cb(new DigestMismatchError(
            `${op}: blob ${short} is larger than the ${size} bytes its descriptor says`,
            `${size} bytes`, `more than ${size} bytes`, { registry: transport.registry, code: 'SIZE_MISMATCH' }));
          return;
        }
        const t = tee;
        let fed: void | Promise<void> = undefined;
        if (t) {
          try {
            for (const c of chunks) {
              teed += c.length;
              fed = t.write(c) ?? fed;
            }
          } catch (err) {
            fed = Promise.reject(err);
          }
          fed = fed?.catch((err: unknown) => {
            throw new TeeFailed(err);
          });
        }
        const disk = chunks.length === 1 ? file.write(chunks[0]!, 0, bytes, written) : file.writev(chunks, written);
        const landed = Promise.all([disk, fed]).then(() => {
          for (const c of chunks) hash.update(c);
          written += bytes;
          report('downloading', attempt);
        });
        inflight = landed.then(() => undefined, () => undefined);
        landed.then(() => cb(), cb);
      };
      const sink = new Writable({
        highWaterMark: SINK_BUFFER,
        write(chunk: Buffer, _enc, cb) {
          land([chunk], cb);
        },
        writev(list, cb) {
          land(list.map((w) => w.chunk as Buffer), cb);
        },
      });
      try {
        await pipeline(stream, sink);
      } catch (err) {
        await inflight;
        if (err instanceof TeeFailed) {
          // the download goes on without it: a corrupt layer may be a tampered blob, which the
          // digest check names better than the unpack can; if the blob is sound, its error stands
          teeError = err.cause;
          dropTee();
          teed = written;
          return attemptOnce(attempt);
        }
        if (err instanceof DigestMismatchError) throw err;
        if (written < size && !signal?.aborted) throw new Truncated(written);
        throw transport.networkError(op, err);
      }
      if (written < size) throw new Truncated(written);
      return;
    }
  };

  try {
    await withRetries(retry, attemptOnce, (err) => {
      if (err instanceof Truncated) return true;
      if (!(err instanceof RegistryError)) return false;
      return (err.status !== undefined && err.status >= 500) || (err.status === undefined && isTransientCode(err.code));
    }, {
      signal,
      onRetry: (_err, attempt) => report('retrying', attempt, true),
    }).catch((err: unknown) => {
      if (err instanceof Truncated) {
        throw new RegistryError(
          `${op}: blob ${short} was cut short: received ${err.got} of ${size} bytes (after ${retry.retries + 1} attempts)`,
          { registry: transport.registry, code: 'TRUNCATED' });
      }
      throw err;
    });
    const actual = `${digest.slice(0, digest.indexOf(':'))}:${hash.digest('hex')}`;
    if (actual !== digest) {
      throw new DigestMismatchError(
        `${op}: blob ${short} does not match its digest: received content hashes to ${actual.slice(0, 19)} (tampered or corrupted in transit)`,
        digest, actual, { registry: transport.registry });
    }
    if (teeError !== undefined) throw teeError;
    // with a tee, the download is complete here; what follows waits on the tee (an unpack)
    if (tee) report('done', 0, true);
    // the file's fsync and the tee's check (a layer unpack finishing) run side by side
    const [synced, checked] = await Promise.allSettled([fh!.sync(), tee?.verify()]);
    if (checked.status === 'rejected') throw checked.reason;
    if (synced.status === 'rejected') throw synced.reason;
    await fh!.close();
    fh = undefined;
    await rename(tmp, destPath);
    await fsyncDir(dirname(destPath));
    if (!opts.tee) report('done', 0, true);
  } catch (err) {
    try {
      await fh?.close();
    } finally {
      await removeTemp(tmp);
    }
    throw err;
  }
}
