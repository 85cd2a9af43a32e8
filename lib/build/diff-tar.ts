/**
 * A build step's layer: the tar of an overlay upper directory, which is the step's diff. Overlay
 * whiteouts (character devices 0/0) become `.wh.<name>` entries and opaque directories a
 * `.wh..wh..opq` entry, as the OCI layer format has them; owners, modes, mtimes, xattrs (but the
 * overlay's own), hard links (by inode), symbolic links, devices and fifos are kept. Names are
 * sorted, so the same tree gives the same bytes. Long names and links, big ids and xattrs go in pax
 * headers. The sha256 of the bytes (the layer's diff id) is taken on the way.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsync, lstatSync, openSync, readdirSync, readlinkSync, readSync, writeSync, type Stats } from 'node:fs';
import path from 'node:path';
import { NsboxError, isCode } from '../errors.js';
import { native } from '../native.js';
import { overlayXattrPrefix } from '../privilege.js';

const BLOCK = 512;
const OVERLAY_XATTR = /^(trusted|user)\.overlay\./;

export interface DiffTarResult {
  diffId: string;
  size: number;
  /** Entries written; 0 for a step that changed nothing. */
  entries: number;
  /** Bytes of regular file content in it. */
  contentSize: number;
  /**
   * Whether unpacking the tar would give back `upper` itself: no overlay attribute but the opaque
   * mark the layer store writes, no socket left out, no time clamped. The directory can then
   * become the layer's tree as it is (LayerStore.adopt), instead of the tar being unpacked again.
   */
  faithful: boolean;
}

interface Header {
  name: string;
  type: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function ustar(h: Omit<Header, 'xattrs'>, name: string, linkname: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  const octal = (v: number, off: number, len: number) => b.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
  b.write(name, 0, 100, 'utf8');
  octal(h.mode & 0o7777, 100, 8);
  octal(Math.min(h.uid, 0o7777777), 108, 8);
  octal(Math.min(h.gid, 0o7777777), 116, 8);
  octal(h.size < 0o77777777777 ? h.size : 0, 124, 12);
  octal(Math.max(0, Math.min(Math.floor(h.mtime), 0o77777777777)), 136, 12);
  b.write(h.type, 156, 1, 'latin1');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'latin1');
  b.write('00', 263, 2, 'latin1');
  if (h.type === '3' || h.type === '4') {
    octal(h.devmajor ?? 0, 329, 8);
    octal(h.devminor ?? 0, 337, 8);
  }
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** The header blocks of one entry: a pax header first when ustar cannot hold a field. */
export function headerBlocks(h: Header): Buffer[] {
  const records: Buffer[] = [];
  const ascii = (s: string) => /^[\x20-\x7e]*$/.test(s);
  let name = h.name;
  let linkname = h.linkname ?? '';
  if (Buffer.byteLength(name) > 100 || !ascii(name)) {
    records.push(paxRecord('path', Buffer.from(name)));
    name = Buffer.from(name).subarray(0, 99).toString('latin1').replace(/[^\x20-\x7e]/g, '_');
  }
  if (Buffer.byteLength(linkname) > 100 || !ascii(linkname)) {
    records.push(paxRecord('linkpath', Buffer.from(linkname)));
    linkname = '';
  }
  if (h.uid > 0o7777777) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > 0o7777777) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (h.size >= 0o77777777777) records.push(paxRecord('size', Buffer.from(String(h.size))));
  for (const [k, v] of [...(h.xattrs ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const out: Buffer[] = [];
  if (records.length) {
    const data = Buffer.concat(records);
    out.push(ustar({ name: 'PaxHeader', type: '0', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: h.mtime }, `PaxHeaders.0/${path.posix.basename(name)}`.slice(0, 99), ''));
    out[0]!.write('x', 156, 1, 'latin1');
    // the type changed after the checksum: recompute it
    out[0]!.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += out[0]![i]!;
    out[0]!.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    out.push(data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  out.push(ustar(h, name, linkname));
  return out;
}

/**
 * Buffered, hashed output: one 1 MiB buffer, filled (file contents read straight into it), hashed
 * and written when full. Synchronous calls: a layer of small files costs a few syscalls each, and
 * a thread-pool round trip for each of them cost more than the syscalls (writeDiffTar yields to
 * the event loop between files instead).
 */
class Out {
  readonly hash = createHash('sha256');
  size = 0;
  readonly #buf = Buffer.allocUnsafe(1 << 20);
  #used = 0;
  constructor(readonly fd: number) {}
  write(chunk: Buffer): void {
    for (let off = 0; off < chunk.length; ) {
      if (this.#used === this.#buf.length) this.flush();
      const n = chunk.copy(this.#buf, this.#used, off);
      this.#used += n;
      off += n;
    }
  }
  /** The free part of the buffer (flushed first when full), for a read into it; then `wrote(n)`. */
  space(): Buffer {
    if (this.#used === this.#buf.length) this.flush();
    return this.#buf.subarray(this.#used);
  }
  wrote(n: number): void {
    this.#used += n;
  }
  flush(): void {
    if (!this.#used) return;
    const data = this.#buf.subarray(0, this.#used);
    this.hash.update(data);
    this.size += data.length;
    for (let off = 0; off < data.length; ) off += writeSync(this.fd, data, off);
    this.#used = 0;
  }
}

/** The overlay attribute the layer store's own trees carry (an opaque directory's); any other makes a tree not faithful. */
const OWN_OPAQUE = `${overlayXattrPrefix()}.overlay.opaque`;

/**
 * Whether the upper directory's root has overlay attributes a layer tree of the store's making
 * would not have. Its `uuid` (the overlay instance's mark, kernel 6.6 on) is not one: it is read
 * from an upper layer's root only, never from a lower layer's.
 */
function foreignRootXattrs(file: string): boolean {
  try {
    return native.llistxattr(file).some((n) => OVERLAY_XATTR.test(n) && n !== OWN_OPAQUE && !/^(trusted|user)\.overlay\.uuid$/.test(n));
  } catch (err) {
    // unreadable: not known to be faithful
    if (isCode(err, 'EPERM', 'EACCES')) return true;
    throw err;
  }
}

function xattrsOfFile(file: string, seen?: { foreign: boolean }): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let names: string[];
  try {
    names = native.llistxattr(file);
  } catch (err) {
    // not ours to read (EPERM, EACCES; a file system without xattrs answers []): no xattrs
    if (isCode(err, 'EPERM', 'EACCES')) return out;
    throw err;
  }
  for (const n of names) {
    if (OVERLAY_XATTR.test(n)) {
      if (seen && n !== OWN_OPAQUE) seen.foreign = true;
      continue;
    }
    const v = native.lgetxattr(file, n);
    if (v) out.set(n, v);
  }
  return out;
}

function isOpaque(dir: string): boolean {
  for (const prefix of ['trusted', 'user']) {
    try {
      const v = native.lgetxattr(dir, `${prefix}.overlay.opaque`);
      if (v && v.toString() === 'y') return true;
    } catch (err) {
      // no xattrs on this file system (ENOTSUP), or not ours to read (EPERM, EACCES): not opaque
      if (!isCode(err, 'ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EACCES')) throw err;
    }
  }
  return false;
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

/**
 * Writes the tar of `upper` to `file` (created). `clampMtime` (SOURCE_DATE_EPOCH) caps entry
 * times. Sockets are skipped, as docker skips them.
 */
export async function writeDiffTar(upper: string, file: string, opts: { clampMtime?: number } = {}): Promise<DiffTarResult> {
  const fd = openSync(file, 'wx', 0o600);
  const out = new Out(fd);
  // sync calls, but the event loop gets a turn every few milliseconds (a server's other requests)
  let since = performance.now();
  const breathe = async () => {
    if (performance.now() - since < 10) return;
    await new Promise((resolve) => setImmediate(resolve));
    since = performance.now();
  };
  const links = new Map<string, string>();
  let entries = 0;
  let contentSize = 0;
  const seen = { foreign: foreignRootXattrs(upper) };
  const time = (st: Stats) => {
    const t = Math.floor(st.mtimeMs / 1000);
    if (opts.clampMtime === undefined || t <= opts.clampMtime) return t;
    seen.foreign = true;
    return opts.clampMtime;
  };
  const xattrsOf = (file: string) => xattrsOfFile(file, seen);
  const emit = (h: Header) => {
    for (const b of headerBlocks(h)) out.write(b);
    entries++;
  };
  const walk = async (rel: string): Promise<void> => {
    const dir = path.join(upper, rel);
    const names = readdirSync(dir).sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1));
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(upper, r);
      await breathe();
      const st = lstatSync(abs);
      const base = { mode: st.mode, uid: st.uid, gid: st.gid, size: 0, mtime: time(st) };
      if (isWhiteout(st)) {
        emit({ ...base, name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, type: '0', mode: 0, uid: 0, gid: 0 });
      } else if (st.isDirectory()) {
        emit({ ...base, name: `${r}/`, type: '5', xattrs: xattrsOf(abs) });
        if (isOpaque(abs)) emit({ ...base, name: `${r}/.wh..wh..opq`, type: '0', mode: 0, uid: 0, gid: 0 });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        emit({ ...base, name: r, type: '2', mode: st.mode & 0o7777, linkname: readlinkSync(abs), xattrs: xattrsOf(abs) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first !== undefined) {
          emit({ ...base, name: r, type: '1', linkname: first });
          continue;
        }
        if (st.nlink > 1) links.set(key, r);
        emit({ ...base, name: r, type: '0', size: st.size, xattrs: xattrsOf(abs) });
        await copyContent(abs, st.size, out, breathe);
        contentSize += st.size;
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const major = Math.floor(st.rdev / 256) & 0xfff;
        const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 4096) & 0xfff00));
        emit({ ...base, name: r, type: st.isCharacterDevice() ? '3' : '4', devmajor: major, devminor: minor, xattrs: xattrsOf(abs) });
      } else if (st.isFIFO()) {
        emit({ ...base, name: r, type: '6', xattrs: xattrsOf(abs) });
      } else seen.foreign = true;
    }
  };
  try {
    await walk('');
    out.write(Buffer.alloc(2 * BLOCK));
    out.flush();
    await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
  } finally {
    closeSync(fd);
  }
  return { diffId: `sha256:${out.hash.digest('hex')}`, size: out.size, entries, contentSize, faithful: !seen.foreign };
}

async function copyContent(file: string, size: number, out: Out, breathe: () => Promise<void>): Promise<void> {
  const fd = openSync(file, 'r');
  try {
    let done = 0;
    while (done < size) {
      const space = out.space();
      const bytesRead = readSync(fd, space, 0, Math.min(space.length, size - done), done);
      if (bytesRead === 0) break;
      out.wrote(bytesRead);
      done += bytesRead;
      if (done < size) await breathe();
    }
    if (done !== size) throw new NsboxError(`${file} changed size while its layer was written (${done} of ${size} bytes)`, { code: 'ERR_BUILD' });
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) out.write(Buffer.alloc(pad));
  } finally {
    closeSync(fd);
  }
}
