/**
 * What the quick bundles use of `node:fs/promises`: tools/bundle-cli.mjs puts this module in its
 * place in quick-*.cjs. Loading Node's own fs/promises costs a short command 2.5–5 ms of CPU (it
 * loads readline, fs watchers and directory streams with it), about a third of what `nsbox ps` may
 * take over `node -e 0`. The errors are the same (code, errno, syscall, path). The bundle's build
 * fails when a quick command's code imports a function this module lacks.
 *
 * Reads (readFile, readdir, stat: small files and directories the page cache holds) are done at
 * once with fs's synchronous functions, their outcome handed back as a promise: a quick command
 * has nothing else to do meanwhile, and a hop through libuv's thread pool costs more than such a
 * read (the pool's four threads started on first use, then a wake-up of a pool thread and of the
 * event loop per call: ~8 ms of a quick exec's record reads on this 2-core VM, ~4 ms done here).
 * What changes the file system (mkdir, rmdir, writeFile, rename: a run's cgroups in ten v1
 * hierarchies, whose rmdirs wait in the kernel) still runs on the pool, side by side.
 */
import { mkdir as mkdirCb, readdirSync, readFileSync, rename as renameCb, rmdir as rmdirCb, statSync, writeFile as writeFileCb } from 'node:fs';
import type { BigIntStats, Dirent, MakeDirectoryOptions, Stats, WriteFileOptions } from 'node:fs';

type Callback<T> = (err: NodeJS.ErrnoException | null, value: T) => void;
const call = <T>(fn: (cb: Callback<T>) => void): Promise<T> => new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

/** fn's value or error, as a settled promise. */
function now<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

export function readFile(file: string, encoding: BufferEncoding): Promise<string>;
export function readFile(file: string): Promise<Buffer>;
export function readFile(file: string, encoding?: BufferEncoding): Promise<string | Buffer> {
  return now(() => (encoding ? readFileSync(file, encoding) : readFileSync(file)));
}

export function readdir(dir: string): Promise<string[]>;
export function readdir(dir: string, opts: { withFileTypes: true }): Promise<Dirent[]>;
export function readdir(dir: string, opts?: { withFileTypes: true }): Promise<string[] | Dirent[]> {
  return now(() => (opts ? readdirSync(dir, opts) : readdirSync(dir)));
}

export function stat(file: string, opts: { bigint: true }): Promise<BigIntStats>;
export function stat(file: string): Promise<Stats>;
export function stat(file: string, opts?: { bigint: true }): Promise<Stats | BigIntStats> {
  return now(() => (opts ? statSync(file, opts) : statSync(file)));
}

export const mkdir = (dir: string, opts?: MakeDirectoryOptions): Promise<string | undefined> => call<string | undefined>((cb) => mkdirCb(dir, opts ?? {}, cb));

export const rmdir = (dir: string): Promise<void> => call<void>((cb) => rmdirCb(dir, (err) => cb(err, undefined)));

export const writeFile = (file: string, data: string | Uint8Array, opts?: WriteFileOptions): Promise<void> =>
  call<void>((cb) => writeFileCb(file, data, opts ?? {}, (err) => cb(err, undefined)));

export const rename = (from: string, to: string): Promise<void> => call<void>((cb) => renameCb(from, to, (err) => cb(err, undefined)));
