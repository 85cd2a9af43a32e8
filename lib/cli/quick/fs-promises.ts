/**
 * What the quick bundles use of `node:fs/promises`, on fs's callback functions: tools/bundle-cli.mjs
 * puts this module in its place in quick-*.cjs. Loading Node's own fs/promises costs a short command
 * 2.5–5 ms of CPU (it loads readline, fs watchers and directory streams with it), about a third of
 * what `nsbox ps` may take over `node -e 0`. The calls are the same: each still runs on libuv's
 * thread pool and fails with the same errors (code, errno, syscall, path). The bundle's build fails
 * when a quick command's code imports a function this module lacks.
 */
import { mkdir as mkdirCb, readdir as readdirCb, readFile as readFileCb, rename as renameCb, rmdir as rmdirCb, stat as statCb, writeFile as writeFileCb } from 'node:fs';
import type { BigIntStats, Dirent, MakeDirectoryOptions, Stats, WriteFileOptions } from 'node:fs';

type Callback<T> = (err: NodeJS.ErrnoException | null, value: T) => void;
const call = <T>(fn: (cb: Callback<T>) => void): Promise<T> => new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

export function readFile(file: string, encoding: BufferEncoding): Promise<string>;
export function readFile(file: string): Promise<Buffer>;
export function readFile(file: string, encoding?: BufferEncoding): Promise<string | Buffer> {
  return encoding ? call<string>((cb) => readFileCb(file, encoding, cb)) : call<Buffer>((cb) => readFileCb(file, cb));
}

export function readdir(dir: string): Promise<string[]>;
export function readdir(dir: string, opts: { withFileTypes: true }): Promise<Dirent[]>;
export function readdir(dir: string, opts?: { withFileTypes: true }): Promise<string[] | Dirent[]> {
  return opts ? call<Dirent[]>((cb) => readdirCb(dir, opts, cb)) : call<string[]>((cb) => readdirCb(dir, cb));
}

export function stat(file: string, opts: { bigint: true }): Promise<BigIntStats>;
export function stat(file: string): Promise<Stats>;
export function stat(file: string, opts?: { bigint: true }): Promise<Stats | BigIntStats> {
  return opts ? call<BigIntStats>((cb) => statCb(file, opts, cb)) : call<Stats>((cb) => statCb(file, cb));
}

export const mkdir = (dir: string, opts?: MakeDirectoryOptions): Promise<string | undefined> => call<string | undefined>((cb) => mkdirCb(dir, opts ?? {}, cb));

export const rmdir = (dir: string): Promise<void> => call<void>((cb) => rmdirCb(dir, (err) => cb(err, undefined)));

export const writeFile = (file: string, data: string | Uint8Array, opts?: WriteFileOptions): Promise<void> =>
  call<void>((cb) => writeFileCb(file, data, opts ?? {}, (err) => cb(err, undefined)));

export const rename = (from: string, to: string): Promise<void> => call<void>((cb) => renameCb(from, to, (err) => cb(err, undefined)));
