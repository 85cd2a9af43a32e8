/** Whether this process is root in the initial user namespace: may mknod, set trusted.* xattrs, write any id map. */
import { readFileSync } from 'node:fs';
import { isCode } from './errors.js';

let cached: boolean | undefined;

export function isPrivileged(): boolean {
  if (cached !== undefined) return cached;
  cached = false;
  if (process.geteuid?.() === 0) {
    try {
      cached = /^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
    } catch (err) {
      // ENOENT: no /proc or a kernel without user namespaces: not known to be the initial namespace's root
      if (!isCode(err, 'ENOENT')) throw err;
      cached = false;
    }
  }
  return cached;
}

/**
 * The xattr namespace of overlayfs metadata (opaque directories) in layers this process unpacks:
 * trusted.* as root; user.* without privileges, read by overlays mounted with `userxattr`.
 */
export const overlayXattrPrefix = (): 'trusted' | 'user' => (isPrivileged() ? 'trusted' : 'user');
