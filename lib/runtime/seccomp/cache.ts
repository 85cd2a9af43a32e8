/**
 * Compiled seccomp programs kept on disk, so that a CLI command (a new process each time) does not
 * compile docker's profile again: `<dir>/<key>.bpf`, the key a sha256 of everything the program
 * depends on (profile, capabilities, arch, kernel release, the compiler's format). A file holds the
 * sha256 of the program, then the program: one torn by a crash or edited by hand fails the check
 * and is compiled and written again, never installed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { isCode, reportCleanupError, reportError } from '../../errors.js';
import type { SeccompArch } from './arch.js';
import { BPF_MAXINSNS } from './bpf.js';
import { compileSeccomp } from './compile.js';
import type { SeccompProfile } from './profile.js';

/** Bump when compileSeccomp's output for the same input changes: older entries are then not found. */
const FORMAT = 1;
const HASH = 32;

export interface CachedSeccompOptions {
  arch: SeccompArch;
  caps: Iterable<string>;
  kernel?: string;
}

export function seccompCacheKey(profile: SeccompProfile, opts: CachedSeccompOptions): string {
  const input = JSON.stringify({ format: FORMAT, arch: opts.arch, kernel: opts.kernel ?? os.release(), caps: [...opts.caps].sort(), profile }, (_k, v: unknown) =>
    // Argument values are bigints (64-bit compares).
    typeof v === 'bigint' ? `${v}n` : v,
  );
  return createHash('sha256').update(input).digest('hex');
}

/** The program from `dir` when a sound one is there, else compiled and stored (best effort). */
export function compileSeccompCached(dir: string, profile: SeccompProfile, opts: CachedSeccompOptions): Buffer {
  const file = join(dir, `${seccompCacheKey(profile, opts)}.bpf`);
  const hit = readEntry(file);
  if (hit) return hit;
  const prog = compileSeccomp(profile, opts);
  writeEntry(dir, file, prog);
  return prog;
}

function readEntry(file: string): Buffer | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    // ENOENT: a miss; any other failure is reported and taken as one (the program is compiled anew)
    if (!isCode(err, 'ENOENT')) reportError(`reading the seccomp cache entry ${file}`)(err);
    return undefined;
  }
  const prog = buf.subarray(HASH);
  if (prog.length === 0 || prog.length % 8 !== 0 || prog.length / 8 > BPF_MAXINSNS) return undefined;
  if (!createHash('sha256').update(prog).digest().equals(buf.subarray(0, HASH))) return undefined;
  return prog;
}

/**
 * Temp file + rename: readers see the old entry or the new one. A cache the process may not write
 * (permissions, a read-only or full file system) is no error; another failure is reported.
 */
function writeEntry(dir: string, file: string, prog: Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  let written = false;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    written = true; // from here on, a failure may leave a (partial) temp file
    writeFileSync(tmp, Buffer.concat([createHash('sha256').update(prog).digest(), prog]), { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    if (!isCode(err, 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT')) reportError(`writing the seccomp cache entry ${file}`)(err);
    if (written) {
      try {
        unlinkSync(tmp);
      } catch (e) {
        // ENOENT: the write failed before it made the file (reportCleanupError passes it over)
        reportCleanupError(`removing ${tmp}`)(e);
      }
    }
  }
}
