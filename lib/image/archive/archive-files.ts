/**
 * The members of an image archive (a tar, maybe gzipped) spooled into a temp directory of the store:
 * each regular file is written to `<dir>/<n>` (never under its own name, so no member name can reach
 * outside) and hashed while it is written; symlinks and hard links between members are resolved by
 * name. Docker's legacy `<id>/layer.tar` entries are such symlinks.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, lstatSync } from 'node:fs';
import { mkdir, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { NsboxError, reportCleanupError } from '../../errors.js';
import { DigestMismatchError, TarReader, type TarEntry, type TarSink } from '../../storage/index.js';
import { ArchiveError } from './archive-error.js';

export interface Member {
  /** Where the member's bytes are (in the temp dir, or in an OCI layout directory). */
  file: string;
  /** sha256 of its bytes, when known (always for archive members). */
  digest?: string;
  size?: number;
}

/** Members by archive-relative name; implemented over a spooled tar or a directory. */
export interface MemberSource {
  /** Where the archive came from, for messages. */
  readonly where: string;
  get(name: string): Member | undefined;
  has(name: string): boolean;
}

const MAX_LINK_DEPTH = 16;

/** `./a//b` → `a/b`; undefined for names that leave the archive (`../x`, `/x` stays relative). */
export function memberName(name: string): string | undefined {
  const n = path.posix.normalize(name.replace(/^\/+/, ''));
  if (n === '.' || n === '..' || n.startsWith('../')) return undefined;
  return n.replace(/\/+$/, '');
}

export class SpooledArchive implements MemberSource {
  readonly where: string;
  readonly dir: string;
  readonly #files = new Map<string, Member>();
  readonly #links = new Map<string, string>();
  /** Files of members being written: closed here if the tar ends in the middle of one. */
  readonly #open = new Set<Promise<FileHandle>>();
  #count = 0;

  private constructor(dir: string, where: string) {
    this.dir = dir;
    this.where = where;
  }

  /**
   * Reads the whole tar (gzip told apart by its first bytes) into a new temp dir under `tmpDir`,
   * named `blob-…` so that the store's start-up repair removes it after a crash. The caller removes
   * it with `dispose()`; on failure it is removed here.
   */
  static async read(source: AsyncIterable<Uint8Array>, tmpDir: string, where: string): Promise<SpooledArchive> {
    const dir = path.join(tmpDir, `blob-archive-${randomBytes(6).toString('hex')}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const archive = new SpooledArchive(dir, where);
    try {
      await archive.#read(source);
      return archive;
    } catch (err) {
      await archive.dispose();
      throw err;
    }
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  async #read(source: AsyncIterable<Uint8Array>): Promise<void> {
    const reader = new TarReader((e) => this.#entry(e), this.where);
    let bytes = 0;
    try {
      for await (const chunk of maybeGunzip(source)) {
        bytes += chunk.length;
        await reader.write(chunk);
      }
      if (bytes === 0) throw new ArchiveError(`${this.where}: the archive is empty`);
      reader.end();
    } catch (err) {
      await Promise.all([...this.#open].map((p) => p.then((fh) => fh.close()).catch(reportCleanupError(`${this.where}: closing a file of the archive after a failed read`))));
      if (err instanceof ArchiveError) throw err;
      const msg = (err as Error).message;
      const why = (msg.startsWith(`${this.where}: `) ? msg.slice(this.where.length + 2) : msg).replace('(truncated layer)', '(truncated archive)');
      throw new ArchiveError(`${this.where}: not a readable image archive: ${why}`, { cause: err });
    }
  }

  #entry(e: TarEntry): TarSink | undefined {
    const name = memberName(e.path);
    if (name === undefined) return undefined;
    if (e.type === 'symlink') {
      const target = memberName(path.posix.join(path.posix.dirname(name), e.linkpath));
      if (target !== undefined) this.#links.set(name, target);
      return undefined;
    }
    if (e.type === 'link') {
      const target = memberName(e.linkpath);
      if (target !== undefined) this.#links.set(name, target);
      return undefined;
    }
    if (e.type !== 'file') return undefined;
    const file = path.join(this.dir, String(this.#count++));
    const hash = createHash('sha256');
    let size = 0;
    const opening = open(file, 'wx', 0o600);
    this.#open.add(opening);
    const member: Member = { file };
    this.#files.set(name, member);
    this.#links.delete(name);
    return {
      write: async (chunk) => {
        hash.update(chunk);
        size += chunk.length;
        await (await opening).write(chunk);
      },
      end: async () => {
        this.#open.delete(opening);
        await (await opening).close();
        member.digest = `sha256:${hash.digest('hex')}`;
        member.size = size;
      },
    };
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  get(name: string): Member | undefined {
    let n = memberName(name);
    for (let i = 0; n !== undefined && i < MAX_LINK_DEPTH; i++) {
      const m = this.#files.get(n);
      if (m) return m.digest === undefined ? undefined : m;
      n = this.#links.get(n);
    }
    return undefined;
  }
}

/** An OCI layout directory: members are its files, hashed when they are ingested. */
export class DirectorySource implements MemberSource {
  readonly where: string;
  readonly dir: string;
  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.where = this.dir;
  }
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
  get(name: string): Member | undefined {
    const n = memberName(name);
    if (n === undefined) return undefined;
    const file = path.join(this.dir, n);
    // lstat: a member is a regular file of the layout itself, not a link out of it
    return lstatSync(file, { throwIfNoEntry: false })?.isFile() ? { file } : undefined;
  }
}

/** A member's whole bytes, checked against `digest` when given (manifests, configs, index.json). */
export async function readMember(src: MemberSource, name: string, digest?: string, maxBytes = 4 << 20): Promise<Buffer> {
  const m = src.get(name);
  if (!m) throw new ArchiveError(`${src.where}: ${name} is missing`);
  let data: Buffer;
  try {
    data = await readFile(m.file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') throw new ArchiveError(`${src.where}: ${name} is missing`, { cause: err });
    throw new NsboxError(`${src.where}: read ${name}: ${code ?? (err as Error).message}`, { code: code ?? 'ERR_NSBOX', path: m.file, cause: err });
  }
  if (data.length > maxBytes) throw new ArchiveError(`${src.where}: ${name} is ${data.length} bytes (more than ${maxBytes})`);
  if (digest !== undefined) {
    const actual = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (actual !== digest) {
      throw new DigestMismatchError(`${src.where}: ${name} hashes to ${actual}, not ${digest} (corrupt archive)`, digest, actual);
    }
  }
  return data;
}

/** The bytes of `source`, gunzipped when they start with the gzip magic. */
async function* maybeGunzip(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head = Buffer.from(first.value);
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield Buffer.from(n.value);
    }
  }
  if (!(head[0] === 0x1f && head[1] === 0x8b)) {
    yield* all();
    return;
  }
  const gunzip = zlib.createGunzip({ chunkSize: 1 << 17 });
  const done = pipeline(Readable.from(all()), gunzip);
  // Marked handled only: its failure is the gunzip's, seen by the loop below, and it is awaited at the end.
  done.catch(() => undefined);
  try {
    yield* gunzip as AsyncIterable<Buffer>;
  } catch (err) {
    throw new Error(`gzip: ${(err as Error).message}`, { cause: err });
  } finally {
    gunzip.destroy();
  }
  await done;
}

/** A file's bytes as a stream, for sources given by path. */
export function fileSource(file: string): AsyncIterable<Uint8Array> {
  return createReadStream(file, { highWaterMark: 1 << 20 });
}
