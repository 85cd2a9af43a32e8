/**
 * A layer's bytes as the uncompressed tar: gzip, zstd or none, told apart by their first bytes
 * (media types lie: docker pushes gzip as "tar" and back). The input is any stream of chunks (a
 * file being read, a download as it arrives), consumed once.
 */
import { spawn } from 'node:child_process';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { LayerError, isCode } from './errors.js';
import { nativeGunzip } from './gunzip-native.js';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Compression by magic bytes. */
export function sniffCompression(head: Buffer): Compression | 'bzip2' | 'xz' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head[0] === 0xfd && head.toString('latin1', 1, 6) === '7zXZ\0') return 'xz';
  return 'none';
}

export interface Decompressed {
  compression: Compression;
  /** The uncompressed bytes; iterate once. */
  chunks: AsyncIterable<Buffer>;
  /**
   * 'sha256:…' of the uncompressed bytes, once `chunks` ended, when the decompressor took it on its
   * own thread (gzip); else the caller hashes the chunks itself.
   */
  digest?: () => string;
}

const HEAD = 6;

/** Reads enough of `input` to tell its compression, then hands back the whole stream as it is. */
export async function sniffStream(input: AsyncIterable<Buffer>, where: string): Promise<{ compression: Compression; chunks: AsyncIterable<Buffer> }> {
  const it = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let have = 0;
  while (have < HEAD) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    have += r.value.length;
  }
  const first = Buffer.concat(head);
  const compression = sniffCompression(first);
  if (compression === 'bzip2' || compression === 'xz') {
    await it.return?.();
    throw new LayerError(`${where}: ${compression} layers are not supported (OCI layers are gzip, zstd or plain tar)`, { code: 'ENOTSUP' });
  }
  async function* whole(): AsyncGenerator<Buffer> {
    let ended = false;
    try {
      if (first.length) yield first;
      for (;;) {
        const r = await it.next();
        if (r.done) {
          ended = true;
          return;
        }
        yield r.value;
      }
    } finally {
      // stopped early (a failed unpack): let the source close its file or socket
      if (!ended) await it.return?.();
    }
  }
  return { compression, chunks: whole() };
}

/** Reads enough of `input` to tell its compression, then hands back the whole stream uncompressed. */
export async function decompress(input: AsyncIterable<Buffer>, where: string): Promise<Decompressed> {
  const { compression, chunks } = await sniffStream(input, where);
  if (compression === 'none') return { compression, chunks };
  if (compression === 'gzip') return { compression, ...nativeGunzip(chunks, where) };
  // zstd: Node 20's zlib has none; newer Node's does, else the zstd command
  const make = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  if (make) return { compression, chunks: through(chunks, make(), 'zstd', where) };
  return { compression, chunks: zstdCommand(chunks, where) };
}

/** `source` through a zlib transform; a corrupt or truncated stream becomes a LayerError. */
async function* through(source: AsyncIterable<Buffer>, transform: Transform, what: string, where: string): AsyncGenerator<Buffer> {
  const input = Readable.from(source, { objectMode: false, highWaterMark: 1 << 20 });
  const done = pipeline(input, transform);
  // its failure is the transform's, seen (and reported) by the loop below; awaited at the end
  done.catch(() => undefined);
  try {
    yield* transform as AsyncIterable<Buffer>;
    await done;
  } catch (err) {
    if (err instanceof LayerError) throw err;
    // an error of the source itself (a failed download) passes through as it is
    if (String((err as NodeJS.ErrnoException).code).startsWith('Z_')) {
      throw new LayerError(`${where}: ${what}: ${(err as Error).message} (corrupt or truncated layer)`, { cause: err });
    }
    throw err;
  } finally {
    input.destroy();
    transform.destroy();
  }
}

async function* zstdCommand(source: AsyncIterable<Buffer>, where: string): AsyncGenerator<Buffer> {
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  // seen through the loop below (stdout ends) and awaited after it
  exited.catch(() => undefined);
  const feeding = pipeline(Readable.from(source), child.stdin);
  // the same: a failed source ends stdin, and the rejection is awaited after the loop
  feeding.catch(() => undefined);
  try {
    yield* child.stdout as Readable as AsyncIterable<Buffer>;
    const code = await exited;
    await feeding;
    if (code !== 0) throw new LayerError(`${where}: zstd -d failed (${code}): ${stderr.trim()}`);
  } catch (err) {
    if (isCode(err, 'ENOENT')) {
      throw new LayerError(`${where}: a zstd layer needs the zstd command (this Node has no zstd in zlib)`, { code: 'ENOTSUP', cause: err });
    }
    throw err;
  } finally {
    if (child.exitCode === null) child.kill();
  }
}
