/**
 * A streaming tar reader (ustar, GNU and pax). It is ours rather than tar's Parser because the layer
 * unpack needs every byte of metadata exactly as written (pax xattr values are binary), refuses what
 * it cannot represent (sparse files, unknown types) instead of skipping it, and pushes back on its
 * source while file bodies are being written.
 */
import { LayerError } from './errors.js';
import { BLOCK, checksumOk, cstring, isZero, newPax, numeric, parsePax, type Pax, type TarEntry, type TarEntryType } from './tar-header.js';

export { isTarHeader, type TarEntry, type TarEntryType } from './tar-header.js';

/** Receives one entry's body; a returned promise makes the reader wait (backpressure). */
export interface TarSink {
  write(chunk: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

export type TarEntryHandler = (entry: TarEntry) => TarSink | undefined | Promise<TarSink | undefined>;

const MAX_META = 1 << 20;

const isPromise = (v: unknown): v is Promise<unknown> => typeof (v as Promise<unknown> | undefined)?.then === 'function';

type State = 'header' | 'body' | 'meta' | 'eof';

export class TarReader {
  readonly #onEntry: TarEntryHandler;
  readonly #where: string;
  #state: State = 'header';
  #partial: Buffer | undefined;
  #remain = 0;
  #pad = 0;
  #sink: TarSink | undefined;
  #metaType = '';
  #meta: Buffer[] = [];
  #pax: Pax = newPax();
  #global: Pax = newPax();
  #longName: string | undefined;
  #longLink: string | undefined;
  #padAfter = 0;
  #zeroBlocks = 0;
  #current = '';
  /** Entries seen (not counting meta headers). */
  entries = 0;

  /** `where` prefixes error messages ("layer sha256:…"). */
  constructor(onEntry: TarEntryHandler, where: string) {
    this.#onEntry = onEntry;
    this.#where = where;
  }

  #error(message: string, entry?: string): LayerError {
    return new LayerError(`${this.#where}: ${message}`, entry === undefined ? {} : { entry });
  }

  async write(chunk: Buffer): Promise<void> {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#pad > 0) {
        const n = Math.min(this.#pad, chunk.length - pos);
        this.#pad -= n;
        pos += n;
        continue;
      }
      switch (this.#state) {
        case 'eof':
          return;
        case 'header': {
          let block: Buffer;
          if (this.#partial || chunk.length - pos < BLOCK) {
            const have = this.#partial?.length ?? 0;
            const take = Math.min(BLOCK - have, chunk.length - pos);
            const piece = chunk.subarray(pos, pos + take);
            this.#partial = this.#partial ? Buffer.concat([this.#partial, piece]) : Buffer.from(piece);
            pos += take;
            if (this.#partial.length < BLOCK) return;
            block = this.#partial;
            this.#partial = undefined;
          } else {
            block = chunk.subarray(pos, pos + BLOCK);
            pos += BLOCK;
          }
          const r = this.#header(block);
          if (isPromise(r)) await r;
          break;
        }
        case 'body': {
          const n = Math.min(this.#remain, chunk.length - pos);
          const piece = chunk.subarray(pos, pos + n);
          pos += n;
          this.#remain -= n;
          if (this.#sink) {
            const r = this.#sink.write(piece);
            if (isPromise(r)) await r;
          }
          if (this.#remain === 0) {
            this.#pad = this.#padAfter;
            await this.#endBody();
          }
          break;
        }
        case 'meta': {
          const n = Math.min(this.#remain, chunk.length - pos);
          this.#meta.push(Buffer.from(chunk.subarray(pos, pos + n)));
          pos += n;
          this.#remain -= n;
          if (this.#remain === 0) {
            this.#pad = this.#padAfter;
            this.#endMeta();
          }
          break;
        }
      }
    }
  }

  /** The input is over: anything but a clean end of archive is an error. */
  end(): void {
    if (this.#state === 'eof') return;
    if (this.#state === 'header' && !this.#partial && this.#pad === 0 && this.#metaType === '') return;
    throw this.#error(`the tar ends in the middle of ${this.#current ? `entry "${this.#current}"` : 'a header'} (truncated layer)`);
  }

  async #endBody(): Promise<void> {
    this.#state = 'header';
    const sink = this.#sink;
    this.#sink = undefined;
    if (sink) {
      const r = sink.end();
      if (isPromise(r)) await r;
    }
  }

  #endMeta(): void {
    const data = Buffer.concat(this.#meta);
    this.#meta = [];
    this.#state = 'header';
    const type = this.#metaType;
    this.#metaType = '';
    try {
      if (type === 'x') parsePax(data, this.#pax, false);
      else if (type === 'g') parsePax(data, this.#global, true);
      else if (type === 'L') this.#longName = cstring(data, 0, data.length);
      else if (type === 'K') this.#longLink = cstring(data, 0, data.length);
    } catch (err) {
      throw this.#error(`bad ${type === 'g' || type === 'x' ? 'pax' : 'GNU long name'} header: ${(err as Error).message}`);
    }
  }

  #header(b: Buffer): void | Promise<void> {
    if (isZero(b)) {
      if (++this.#zeroBlocks >= 2) this.#state = 'eof';
      return;
    }
    if (this.#zeroBlocks > 0) throw this.#error('data after an end-of-archive block');
    let ok: boolean;
    try {
      ok = checksumOk(b);
    } catch {
      // its one error: the checksum field is no octal number, so this is no header
      ok = false;
    }
    if (!ok) throw this.#error(`bad tar header checksum after ${this.#current ? `entry "${this.#current}"` : 'the start'} (not a tar, or corrupt)`);
    const flag = b[156] === 0 ? '0' : String.fromCharCode(b[156]!);
    const magic = b.toString('latin1', 257, 263);
    let name = cstring(b, 0, 100);
    if (magic === 'ustar\0') {
      const prefix = cstring(b, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    let size: number;
    try {
      size = numeric(b, 124, 12, 'size');
    } catch (err) {
      throw this.#error(`entry "${name}": ${(err as Error).message}`, name);
    }
    if (size < 0) throw this.#error(`entry "${name}": negative size`, name);

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw this.#error(`a ${size}-byte metadata header (more than ${MAX_META})`);
      this.#metaType = flag;
      this.#remain = size;
      this.#state = size > 0 ? 'meta' : 'header';
      if (size === 0) this.#endMeta();
      else this.#afterBody(size);
      return;
    }

    const pax = this.#pax;
    this.#pax = newPax();
    const path = pax.path ?? this.#longName ?? name;
    const linkpath = pax.linkpath ?? this.#longLink ?? cstring(b, 157, 100);
    this.#longName = undefined;
    this.#longLink = undefined;
    this.#current = path;
    if (pax.size !== undefined) size = pax.size;
    else if (this.#global.size !== undefined) size = this.#global.size;

    let type: TarEntryType | undefined;
    switch (flag) {
      case '0':
      case '7':
        type = path.endsWith('/') ? 'dir' : 'file';
        break;
      case '1':
        type = 'link';
        break;
      case '2':
        type = 'symlink';
        break;
      case '3':
        type = 'char';
        break;
      case '4':
        type = 'block';
        break;
      case '5':
      case 'D':
        type = 'dir';
        break;
      case '6':
        type = 'fifo';
        break;
      case 'V':
        type = undefined; // a volume label: nothing to create
        break;
      case 'S':
        throw this.#error(`entry "${path}": GNU sparse files are not supported`, path);
      default:
        throw this.#error(`entry "${path}": unsupported tar entry type "${flag}"`, path);
    }
    if (pax.sparse || this.#global.sparse) throw this.#error(`entry "${path}": pax sparse files are not supported`, path);

    this.#state = size > 0 ? 'body' : 'header';
    this.#remain = size;
    this.#afterBody(size);
    if (type === undefined) return;

    let entry: TarEntry;
    try {
      const gnu = magic === 'ustar ';
      const mtime = pax.mtime ?? this.#global.mtime ?? numeric(b, 136, 12, 'mtime');
      const atime = pax.atime ?? this.#global.atime ?? (gnu ? numeric(b, 345, 12, 'atime') || undefined : undefined);
      const xattrs = this.#global.xattrs.size ? new Map([...this.#global.xattrs, ...pax.xattrs]) : pax.xattrs;
      entry = {
        path,
        type,
        mode: numeric(b, 100, 8, 'mode') & 0o7777,
        uid: pax.uid ?? this.#global.uid ?? numeric(b, 108, 8, 'uid'),
        gid: pax.gid ?? this.#global.gid ?? numeric(b, 116, 8, 'gid'),
        size,
        mtime,
        ...(atime === undefined ? {} : { atime }),
        linkpath,
        devmajor: type === 'char' || type === 'block' ? numeric(b, 329, 8, 'devmajor') : 0,
        devminor: type === 'char' || type === 'block' ? numeric(b, 337, 8, 'devminor') : 0,
        xattrs,
      };
    } catch (err) {
      throw this.#error(`entry "${path}": ${(err as Error).message}`, path);
    }
    this.entries++;
    const r = this.#onEntry(entry);
    if (isPromise(r)) {
      return r.then((sink) => {
        if (this.#state === 'body') this.#sink = sink;
        else if (sink) return sink.end();
      });
    }
    if (this.#state === 'body') this.#sink = r;
    else if (r) return r.end();
  }

  /** Padding that follows a body of `size` bytes, skipped once the body is consumed. */
  #afterBody(size: number): void {
    this.#padAfter = (BLOCK - (size % BLOCK)) % BLOCK;
  }
}
