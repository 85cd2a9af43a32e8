/**
 * Tar header fields (ustar, GNU and pax): the entry shape, the number encodings (octal and GNU
 * base-256), the header checksum and pax records, for the streaming reader (tar-reader.ts).
 */
export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** The name as written in the archive (pax path, GNU long name or ustar prefix/name). */
  path: string;
  type: TarEntryType;
  /** Permission bits including setuid, setgid and sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (fractional with pax). */
  mtime: number;
  atime?: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  /** From pax SCHILY.xattr.* (and LIBARCHIVE.xattr.*) records. */
  xattrs: Map<string, Buffer>;
}

export const BLOCK = 512;

export interface Pax {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  atime?: number;
  xattrs: Map<string, Buffer>;
  sparse?: boolean;
}

export function cstring(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

export function numeric(b: Buffer, off: number, len: number, field: string): number {
  const first = b[off]!;
  if (first & 0x80) {
    // base-256 (GNU): 0x80 positive, 0xff negative two's complement
    let v = 0;
    const negative = first === 0xff;
    for (let i = 0; i < len; i++) {
      let byte = b[off + i]!;
      if (i === 0) byte &= 0x7f;
      if (negative) byte = ~byte & 0xff;
      v = v * 256 + byte;
    }
    if (!Number.isSafeInteger(v)) throw new Error(`${field}: number out of range`);
    return negative ? -(v + 1) : v;
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`${field}: "${s}" is not an octal number`);
  return parseInt(s, 8);
}

export function checksumOk(b: Buffer): boolean {
  const stored = numeric(b, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** Whether `b` starts with a tar header (ustar, GNU or v7): its checksum field matches its bytes. */
export function isTarHeader(b: Buffer): boolean {
  if (b.length < BLOCK) return false;
  try {
    return checksumOk(b);
  } catch {
    // its one error: the checksum field is no octal number, so this is no header
    return false;
  }
}

export function isZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** pax records: "<len> <key>=<value>\n", len counting the whole record; values may be binary. */
export function parsePax(data: Buffer, into: Pax, global: boolean): void {
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) throw new Error('malformed pax record');
    const len = Number(data.toString('latin1', pos, sp));
    if (!Number.isInteger(len) || len <= sp - pos || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new Error('malformed pax record');
    }
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq === -1 || eq >= pos + len) throw new Error('malformed pax record');
    const key = data.toString('utf8', sp + 1, eq);
    const value = data.subarray(eq + 1, pos + len - 1);
    pos += len;
    const text = () => value.toString('utf8');
    const int = () => {
      const n = Number(text());
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`pax ${key}: "${text()}" is not a number`);
      return n;
    };
    switch (key) {
      case 'path':
        if (!global && value.length) into.path = text();
        break;
      case 'linkpath':
        if (!global && value.length) into.linkpath = text();
        break;
      case 'size':
        if (value.length) into.size = int();
        break;
      case 'uid':
        if (value.length) into.uid = int();
        break;
      case 'gid':
        if (value.length) into.gid = int();
        break;
      case 'mtime':
      case 'atime': {
        const t = Number(text());
        if (value.length && Number.isFinite(t)) into[key] = t;
        break;
      }
      default:
        if (key.startsWith('SCHILY.xattr.')) into.xattrs.set(key.slice(13), Buffer.from(value));
        else if (key.startsWith('LIBARCHIVE.xattr.')) {
          into.xattrs.set(decodeURIComponent(key.slice(17)), Buffer.from(text(), 'base64'));
        } else if (key.startsWith('GNU.sparse.')) into.sparse = true;
    }
  }
}

export const newPax = (): Pax => ({ xattrs: new Map() });
