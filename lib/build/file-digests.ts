/**
 * The sha256 of files the builder hashes (COPY sources for the cache key, the context for the
 * provenance), remembered by path and stat: a file whose device, inode, size, mtime and ctime are
 * those it had when it was hashed is not read again, as BuildKit's content hash cache and git's
 * index do. A file changed within the last seconds before it was hashed is not remembered (a
 * write in the same clock tick would leave its times as they were: git's "racy" entries). Kept in
 * `<root>/build-cache/file-digests/<hash of the context's path>.json`, read once per build and
 * written back when it changed;
 * a lost or damaged file only costs the reads.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { isCode, reportError } from '../errors.js';

/** [dev, ino, size, mtimeMs, ctimeMs, hex digest, last used (s since the epoch)] */
type Entry = [number, number, number, number, number, string, number];

/** Entries of one shard above this many are dropped, least recently used first, when it is written. */
const MAX_ENTRIES = 100_000;
const DAY = 86_400;
/** A file changed this recently (ms) when it was hashed is not remembered. */
const RACY_MS = 2_000;

/** The entries of the files below one root (a build context), by path relative to it. */
class Shard {
  entries = new Map<string, Entry>();
  dirty = false;
  constructor(readonly file: string) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      // ENOENT: nothing remembered yet
      if (!isCode(err, 'ENOENT')) reportError(`reading ${file}`)(err);
      return;
    }
    try {
      const json = JSON.parse(text) as unknown;
      if (json && typeof json === 'object') {
        for (const [k, v] of Object.entries(json)) {
          if (Array.isArray(v) && v.length === 7 && typeof v[5] === 'string') this.entries.set(k, v as Entry);
        }
      }
    } catch (err) {
      // a torn file: forgotten, rewritten at the end of this build
      reportError(`${file} is damaged; the files are hashed again`)(err);
      this.dirty = true;
    }
  }

  save(): void {
    if (!this.dirty) return;
    let list = [...this.entries];
    if (list.length > MAX_ENTRIES) list = list.sort((a, b) => b[1][6] - a[1][6]).slice(0, MAX_ENTRIES);
    const tmp = `${this.file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true });
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(list)));
      renameSync(tmp, this.file);
      this.dirty = false;
    } catch (err) {
      rmSync(tmp, { force: true });
      reportError(`writing ${this.file}`)(err);
    }
  }
}

export class FileDigests {
  readonly #dir: string;
  readonly #shards = new Map<string, Shard>();
  readonly #now = Math.floor(Date.now() / 1000);
  readonly #buf = Buffer.allocUnsafe(1 << 20);

  /** `cacheDir`: the build cache's directory; one file per root below its `file-digests/`. */
  constructor(cacheDir: string) {
    this.#dir = path.join(cacheDir, 'file-digests');
  }

  #shard(root: string): Shard {
    let s = this.#shards.get(root);
    if (!s) this.#shards.set(root, (s = new Shard(path.join(this.#dir, `${createHash('sha256').update(root).digest('hex').slice(0, 32)}.json`))));
    return s;
  }

  /** The hex sha256 of the regular file `rel` below `root`, whose lstat is `st`. */
  digest(root: string, rel: string, st: Stats): string {
    const shard = this.#shard(root);
    const e = shard.entries.get(rel);
    if (e && e[0] === st.dev && e[1] === st.ino && e[2] === st.size && e[3] === st.mtimeMs && e[4] === st.ctimeMs) {
      // the last use is kept to the day: a build that only hits writes nothing
      if (this.#now - e[6] > DAY) {
        e[6] = this.#now;
        shard.dirty = true;
      }
      return e[5];
    }
    const hex = this.#hash(rel === '' ? root : path.join(root, rel));
    if (Date.now() - Math.max(st.mtimeMs, st.ctimeMs) > RACY_MS) {
      shard.entries.set(rel, [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, hex, this.#now]);
      shard.dirty = true;
    } else if (e) {
      shard.entries.delete(rel);
      shard.dirty = true;
    }
    return hex;
  }

  #hash(file: string): string {
    const h = createHash('sha256');
    const fd = openSync(file, 'r');
    try {
      for (let n; (n = readSync(fd, this.#buf, 0, this.#buf.length, null)) > 0; ) h.update(this.#buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    return h.digest('hex');
  }

  /** Writes back the files whose entries changed (a temp file renamed over the old one; a cache, so not fsynced). */
  save(): void {
    for (const s of this.#shards.values()) s.save();
  }
}
