/**
 * Push one blob: a cross-repository mount when the caller names a source repository on the same
 * registry, else POST for a session and PUT the whole body (or PATCH it in chunks, then PUT). The
 * POST may go first on its own (openUpload), beside the caller's HEAD.
 * docker-registry 2.8 changes the upload `Location` on every answer, so each step uses the latest.
 */
import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { RegistryError } from './errors.js';
import type { Descriptor } from './manifest.js';
import { isTransientCode, withRetries, type RetryPolicy } from './retry.js';
import { RegistryTransport, type HttpResponse } from './transport.js';

/** A file path or the bytes themselves. */
export type BlobSource = string | Buffer;

export interface PushBlobOptions {
  /** A repository on the same registry that already has the blob: tried as a cross-repo mount first. */
  mountFrom?: string | undefined;
  /** Upload in PATCH chunks of this many bytes (default: one monolithic PUT). */
  chunkSize?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Bytes of the blob handed to the connection so far (from the start again when an upload is retried). */
  onProgress?: ((sent: number) => void) | undefined;
  /** The session openUpload opened (with the same `mountFrom`), used by the first attempt. */
  opened?: Promise<OpenedUpload> | undefined;
}

/** What the upload's first POST gave: the blob mounted, or a session to send it to. */
export type OpenedUpload = { mounted: true } | { mounted: false; location: string };

/**
 * Reads of a blob file for its upload: 1 MiB, not the stream default of 64 KiB, which made the
 * socket writes and the event-loop turns per byte sixteen times as many (a 51 MB layer went to a
 * loopback registry in ~600 ms instead of ~450 ms).
 */
const READ_CHUNK = 1 << 20;

function slice(source: BlobSource, start: number, end: number, onProgress?: (sent: number) => void): Buffer | (() => NodeJS.ReadableStream) {
  if (Buffer.isBuffer(source)) {
    // handed to the connection whole
    onProgress?.(end);
    return source.subarray(start, end);
  }
  if (!onProgress) return () => createReadStream(source, { start, end: end - 1, highWaterMark: READ_CHUNK });
  return () => {
    let sent = start;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        onProgress(sent);
        cb(null, chunk);
      },
    });
    const file = createReadStream(source, { start, end: end - 1, highWaterMark: READ_CHUNK });
    file.on('error', (err) => counter.destroy(err));
    return file.pipe(counter);
  };
}

function location(res: HttpResponse, op: string, registry: string): string {
  const loc = RegistryTransport.header(res.headers, 'location');
  if (!loc) throw new RegistryError(`${op}: the registry sent no upload Location`, { registry, code: 'BLOB_UPLOAD_INVALID', status: res.status });
  return new URL(loc, res.url).toString();
}

function withDigest(loc: string, digest: string): string {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u.toString();
}

/**
 * The POST that starts an upload: a cross-repository mount when `mountFrom` is another repository
 * (201: done), else a new session. Done on its own, it lets a caller open the session while its
 * HEAD asks whether the blob is there at all (one round trip less for a blob that is not).
 * `mountFrom` naming the repository itself asks both at once: a mount from itself is answered 201
 * when the repository has the blob and with a new session (202) when not (Distribution and the
 * OCI spec fall back to a session whenever a mount cannot be done).
 */
export async function openUpload(transport: RegistryTransport, repoPath: string, digest: string, op: string, opts: Pick<PushBlobOptions, 'mountFrom' | 'signal'> = {}): Promise<OpenedUpload> {
  const blobOp = `${op}: blob ${digest.slice(0, 19)}`;
  const mount = opts.mountFrom || undefined;
  const scopes = [`repository:${repoPath}:pull,push`, ...(mount && mount !== repoPath ? [`repository:${mount}:pull`] : [])];
  const q = mount ? `?${new URLSearchParams({ mount: digest, from: mount })}` : '';
  const res = await transport.request({ method: 'POST', url: `/v2/${repoPath}/blobs/uploads/${q}`, scopes, op: blobOp, signal: opts.signal, retry: false });
  if (mount && res.status === 201) return { mounted: true };
  if (res.status !== 202) throw transport.errorFor(blobOp, res);
  return { mounted: false, location: location(res, blobOp, transport.registry) };
}

/** Ends a session openUpload opened and nobody will finish (the HEAD found the blob): the registry drops its temp data. */
export async function cancelUpload(transport: RegistryTransport, repoPath: string, opened: OpenedUpload, op: string, signal?: AbortSignal): Promise<void> {
  if (opened.mounted) return;
  const res = await transport.request({ method: 'DELETE', url: opened.location, scopes: [`repository:${repoPath}:pull,push`], op, signal, retry: false });
  // 404: the registry forgot the session already
  if (res.status !== 204 && res.status !== 404) throw transport.errorFor(op, res);
}

export async function uploadBlob(
  transport: RegistryTransport,
  repoPath: string,
  descriptor: Descriptor,
  source: BlobSource,
  op: string,
  retry: RetryPolicy,
  opts: PushBlobOptions = {},
): Promise<'pushed' | 'mounted'> {
  const { digest, size } = descriptor;
  const short = digest.slice(0, 19);
  const scopes = [`repository:${repoPath}:pull,push`];
  if (opts.mountFrom && opts.mountFrom !== repoPath) scopes.push(`repository:${opts.mountFrom}:pull`);
  const signal = opts.signal;
  const blobOp = `${op}: blob ${short}`;
  const expect = (res: HttpResponse, ...ok: number[]) => {
    if (!ok.includes(res.status)) throw transport.errorFor(blobOp, res);
    return res;
  };

  const once = async (attempt: number): Promise<'pushed' | 'mounted'> => {
    const opened = await (attempt === 0 && opts.opened ? opts.opened : openUpload(transport, repoPath, digest, op, opts));
    if (opened.mounted) return 'mounted';
    let loc = opened.location;
    const octet = { 'content-type': 'application/octet-stream' };
    const chunk = opts.chunkSize && opts.chunkSize > 0 && size > opts.chunkSize ? opts.chunkSize : 0;
    let done: HttpResponse;
    if (chunk) {
      for (let start = 0; start < size; start += chunk) {
        const end = Math.min(size, start + chunk);
        const res = expect(await transport.request({
          method: 'PATCH', url: loc, scopes, op: blobOp, signal, retry: false,
          headers: { ...octet, 'content-length': String(end - start), 'content-range': `${start}-${end - 1}` },
          body: slice(source, start, end, opts.onProgress),
        }), 202);
        loc = location(res, blobOp, transport.registry);
      }
      done = await transport.request({ method: 'PUT', url: withDigest(loc, digest), scopes, op: blobOp, signal, retry: false, headers: { 'content-length': '0' } });
    } else {
      done = await transport.request({
        method: 'PUT', url: withDigest(loc, digest), scopes, op: blobOp, signal, retry: false,
        headers: { ...octet, 'content-length': String(size) },
        body: slice(source, 0, size, opts.onProgress),
      });
    }
    expect(done, 201);
    const got = RegistryTransport.header(done.headers, 'docker-content-digest');
    if (got && got !== digest) {
      throw new RegistryError(`${blobOp}: the registry stored it as ${got}`, { registry: transport.registry, code: 'DIGEST_INVALID', status: done.status });
    }
    return 'pushed';
  };

  return withRetries(retry, once, (err) =>
    err instanceof RegistryError && ((err.status !== undefined && err.status >= 500) || (err.status === undefined && isTransientCode(err.code))), { signal });
}
