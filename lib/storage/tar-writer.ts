/**
 * A minimal tar writer for image archives: directories and regular files with short names, as
 * ustar (base-256 sizes past 8 GiB, as GNU tar writes them). Archive members never need more. Its
 * reader is tar-reader.ts; errors carry the archive code 'ERR_ARCHIVE'.
 */
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { NsboxError } from '../errors.js';
import { BLOCK } from './tar-header.js';

const archiveError = (message: string) => new NsboxError(message, { code: 'ERR_ARCHIVE' });

function header(name: string, type: '0' | '5', size: number, mode: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw archiveError(`tar member name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  const octal = (v: number, off: number, len: number) => h.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
  h.write(name, 0, 100, 'utf8');
  octal(mode, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  if (size < 0o77777777777) octal(size, 124, 12);
  else {
    h[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      h[i] = v % 256;
      v = Math.floor(v / 256);
    }
  }
  octal(mtime, 136, 12);
  h.write(type, 156, 1, 'latin1');
  h.write('ustar\0', 257, 6, 'latin1');
  h.write('00', 263, 2, 'latin1');
  h.write('root', 265, 32, 'latin1');
  h.write('root', 297, 32, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return h;
}

export class TarWriter {
  readonly #fh: FileHandle;
  readonly #mtime: number;
  constructor(fh: FileHandle, mtime = 0) {
    this.#fh = fh;
    this.#mtime = mtime;
  }

  async dir(name: string): Promise<void> {
    await this.#fh.write(header(name.endsWith('/') ? name : `${name}/`, '5', 0, 0o755, this.#mtime));
  }

  async bytes(name: string, data: Buffer): Promise<void> {
    await this.#fh.write(header(name, '0', data.length, 0o644, this.#mtime));
    await this.#fh.write(data);
    await this.#pad(data.length);
  }

  /** A member copied from `path`, which must be `size` bytes. */
  async file(name: string, file: string, size: number): Promise<void> {
    await this.#fh.write(header(name, '0', size, 0o644, this.#mtime));
    let n = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > size) break;
      await this.#fh.write(chunk);
    }
    if (n !== size) throw archiveError(`${file} changed size while it was archived (${n} bytes, expected ${size})`);
    await this.#pad(size);
  }

  async end(): Promise<void> {
    await this.#fh.write(Buffer.alloc(2 * BLOCK));
  }

  async #pad(size: number): Promise<void> {
    const rest = size % BLOCK;
    if (rest) await this.#fh.write(Buffer.alloc(BLOCK - rest));
  }
}
