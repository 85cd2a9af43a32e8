import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { mkdir as mkdirAsync, rmdir as rmdirAsync, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError, NsboxError, isCode } from '../errors.js';
import { exitsOf, untilChanged } from './kill.js';
import { native } from '../native.js';

/** Turns a Node fs error on a cgroup file into an NsboxError that keeps errno, syscall and path. */
export function cgroupFsError(err: unknown, what: string, file: string): NsboxError {
  const e = err as NodeJS.ErrnoException;
  const details = { code: e.code ?? 'ERR_NSBOX', errno: e.errno === undefined ? undefined : Math.abs(e.errno), syscall: e.syscall, path: file, cause: err };
  const msg = `${what} ${file}: ${e.code ?? e.message}`;
  return e.code === 'ENOENT' ? new NotFoundError(msg, details) : new NsboxError(msg, details);
}

/*
 * cgroupfs is a kernel pseudo file system: its reads and writes never wait for a disk and take
 * microseconds, far less than a round trip through libuv's thread pool. So the read and write
 * primitives below call the synchronous fs functions behind async signatures. The exceptions are
 * moving a process (cgroup.procs, tasks) and creating or removing a cgroup: on cgroup v1 they wait
 * for an RCU grace period or for the lock held through one, so they stay on the thread pool.
 */
const readFile = async (file: string, _enc: 'utf8') => readFileSync(file, 'utf8');
// mkdir and rmdir take the kernel's cgroup_mutex, which a concurrent move of a process into a v1
// cgroup (cgroup.procs) holds for an RCU grace period: those go to the thread pool, so that the
// event loop never waits on that lock. (The quick `run --rm`, with nothing else to do meanwhile,
// makes and removes its cgroup in one call of the addon each: cpp/cgroup-dirs.cc.)
const mkdir = (dir: string) => mkdirAsync(dir);
const rmdir = (dir: string) => rmdirAsync(dir);
function readdir(dir: string): Promise<string[]>;
function readdir(dir: string, opts: { withFileTypes: true }): Promise<import('node:fs').Dirent[]>;
async function readdir(dir: string, opts?: { withFileTypes: true }) {
  return opts ? readdirSync(dir, opts) : readdirSync(dir);
}
const movesProcess = (file: string) => file.endsWith('/cgroup.procs') || file.endsWith('/tasks');

export { isCode };

export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw cgroupFsError(err, 'read', file);
  }
}

/** Reads a file, or returns undefined when it does not exist (a controller or feature the kernel lacks). */
export async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENODEV', 'EOPNOTSUPP')) return undefined;
    throw cgroupFsError(err, 'read', file);
  }
}

/** A recorded write: a file and its value, or a cgroup directory and its device program (devices.ts). */
export type RecordedWrite = [string, string | Buffer];

let recorded: RecordedWrite[] | undefined;

/**
 * Runs fn with the writes of writeValue that succeed recorded in order: nsbox-runc's create records
 * those of applying a config's limits, which its C++ side replays (lib/oci/plan-cache.ts). For a
 * process doing nothing else meanwhile: the record is not scoped to fn's own calls.
 */
export async function recordingWrites<T>(fn: () => Promise<T>, into: RecordedWrite[]): Promise<T> {
  if (recorded) throw new Error('recordingWrites: already recording');
  recorded = into;
  try {
    return await fn();
  } finally {
    recorded = undefined;
  }
}

/**
 * Writes a value in one write(2). O_WRONLY without O_CREAT: a missing control file is ENOENT (the
 * controller is absent), never an attempt to create one; write-only files like cgroup.kill open fine.
 */
export async function writeValue(file: string, value: string | number): Promise<void> {
  try {
    if (movesProcess(file)) await writeFile(file, String(value), { flag: constants.O_WRONLY });
    else {
      const fd = openSync(file, constants.O_WRONLY);
      try {
        writeSync(fd, String(value));
      } finally {
        closeSync(fd);
      }
    }
  } catch (err) {
    throw cgroupFsError(err, `write '${value}' to`, file);
  }
  recorded?.push([file, String(value)]);
}

/** Records a step of applying limits that is not a file write (a device program), when recording. */
export function recordStep(step: RecordedWrite): void {
  recorded?.push(step);
}

export async function exists(file: string): Promise<boolean> {
  try {
    await readdir(file);
    return true;
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return false;
    throw cgroupFsError(err, 'read', file);
  }
}

/** A cgroup value that may be 'max' (v2) or a huge sentinel (v1 "unlimited") → number, or null when unlimited. */
export function parseLimit(text: string | undefined): number | null | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === 'max' || t === '-1') return null;
  const n = Number(t);
  if (!Number.isFinite(n)) return undefined;
  return n >= 2 ** 62 ? null : n;
}

export function parseNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** Parses "key value" lines (memory.stat, cpu.stat, cgroup.events, memory.oom_control). */
export function parseFlatKeyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (text === undefined) return out;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

/** Parses "maj:min key=value ..." lines (io.stat, io.max) → device → key → value. */
export function parseNestedKeyed(text: string | undefined): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  if (text === undefined) return out;
  for (const line of text.split('\n')) {
    const [dev, ...pairs] = line.trim().split(/\s+/);
    if (!dev) continue;
    const rec: Record<string, string> = (out[dev] ??= {});
    for (const p of pairs) {
      const i = p.indexOf('=');
      if (i > 0) rec[p.slice(0, i)] = p.slice(i + 1);
    }
  }
  return out;
}

export function parsePids(text: string | undefined): number[] {
  if (text === undefined) return [];
  return text.split('\n').filter(Boolean).map(Number);
}

/**
 * Creates `dir` and any missing ancestors below `stop`, one level at a time, and returns the levels it
 * created (outermost first), so callers can initialise each one (cpuset, subtree_control).
 * The leaf must not exist yet unless `existOk`.
 */
export async function mkdirLevels(stop: string, dir: string, existOk = false): Promise<string[]> {
  const rel = path.posix.relative(stop, dir);
  if (rel === '' || rel.startsWith('..')) throw new NsboxError(`cgroup ${dir} is not below ${stop}`, { code: 'EINVAL', path: dir });
  const created: string[] = [];
  const parts = rel.split('/');
  // A parent found may be removed before the level below it is made (its last cgroup's removal
  // takes an empty nsbox parent along, rmdirNsboxParents): then the levels are walked again.
  for (let attempt = 1; ; attempt++) {
    let cur = stop;
    try {
      for (let i = 0; i < parts.length; i++) {
        cur = path.posix.join(cur, parts[i]!);
        const leaf = i === parts.length - 1;
        // Parents usually exist already: check without the cost of a thrown EEXIST.
        if (!leaf && existsSync(cur)) continue;
        try {
          await mkdir(cur);
          created.push(cur);
          if (!leaf) markMade(cur);
        } catch (err) {
          if (isCode(err, 'EEXIST') && (!leaf || existOk)) continue;
          throw err;
        }
      }
      return created;
    } catch (err) {
      if (isCode(err, 'ENOENT') && attempt < 5) continue;
      throw cgroupFsError(err, 'mkdir', cur);
    }
  }
}

/**
 * The mark mkdirLevels leaves on each parent level it makes (an xattr on the cgroup's directory:
 * `user.` where the kernel takes it, else `trusted.`): only a level that carries it is nsbox's to
 * remove. A cgroup some other tool made keeps its name, nsbox or not, and is never removed.
 */
const MADE = ['user.nsbox.made', 'trusted.nsbox.made'];
const MARK = Buffer.from('1');

function markMade(dir: string): void {
  for (const name of MADE) {
    try {
      native.lsetxattr(dir, name, MARK);
      return;
    } catch {
      // Not taken in this namespace (or the level is gone already): the next one, else unmarked,
      // which leaves the level in place after its last cgroup, never removes a foreign one.
    }
  }
}

/** Whether mkdirLevels made the level `dir` (see MADE). */
export function madeByNsbox(dir: string): boolean {
  return MADE.some((name) => {
    try {
      return native.lgetxattr(dir, name) !== null;
    } catch {
      // Unreadable (the level gone, or a namespace without that prefix): not marked, so kept.
      return false;
    }
  });
}

/**
 * After a cgroup's removal: its parent levels below `stop` whose name says nsbox and that
 * mkdirLevels made (marked so: `nsbox` by default, or the levels of a cgroupParent), nearest first,
 * each while it is empty. The kernel refuses the rmdir of a cgroup with processes or sub-cgroups
 * (EBUSY, ENOTEMPTY), which ends the climb, as does the first level not made by nsbox: so the
 * caller's own cgroup and its ancestors are never removed, nor a level whose name does not say
 * nsbox, nor an nsbox-named cgroup that another tool made.
 */
export async function rmdirNsboxParents(stop: string, dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (let cur = path.posix.dirname(dir); cur.startsWith(`${stop}/`) && path.posix.basename(cur).includes('nsbox') && madeByNsbox(cur); cur = path.posix.dirname(cur)) {
    try {
      await rmdir(cur);
      removed.push(cur);
    } catch (err) {
      // In use, or gone with another cgroup's removal: either way, not this removal's to climb on.
      if (isCode(err, 'EBUSY', 'ENOTEMPTY', 'ENOENT')) break;
      throw cgroupFsError(err, 'rmdir', cur);
    }
  }
  return removed;
}

/** Sub-cgroup directories of `dir`, deepest first, then `dir` itself. */
export async function walkDeepestFirst(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isCode(err, 'ENOENT')) return [];
    throw cgroupFsError(err, 'readdir', dir);
  }
  const out: string[] = [];
  for (const e of entries) if (e.isDirectory()) out.push(...(await walkDeepestFirst(path.join(dir, e.name))));
  out.push(dir);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export { sleep };

/**
 * Removes a cgroup directory and its sub-cgroups, deepest first. A cgroup that is already gone is
 * fine. One that answers EBUSY (tasks still leaving after a kill) is tried again when they are
 * gone, until `timeoutMs`: on cgroup2 when its cgroup.events says it is no longer populated
 * (inotify), on v1 when the processes its cgroup.procs lists have exited (their pidfds).
 */
export async function rmdirTree(dir: string, timeoutMs = 5000): Promise<void> {
  // The common case is a cgroup without sub-cgroups: one rmdir, no directory walk.
  try {
    await rmdir(dir);
    return;
  } catch (err) {
    if (isCode(err, 'ENOENT')) return;
    if (!isCode(err, 'EBUSY', 'ENOTEMPTY')) throw cgroupFsError(err, 'rmdir', dir);
  }
  const deadline = Date.now() + timeoutMs;
  for (const d of await walkDeepestFirst(dir)) {
    for (;;) {
      try {
        await rmdir(d);
        break;
      } catch (err) {
        if (isCode(err, 'ENOENT')) break;
        const left = deadline - Date.now();
        if (!isCode(err, 'EBUSY') || left <= 0) throw cgroupFsError(err, 'rmdir', d);
        await untilLeft(d, left);
      }
    }
  }
}

/** Until the tasks of cgroup `d` (no sub-cgroups) are gone, or `ms` has passed. */
async function untilLeft(d: string, ms: number): Promise<void> {
  const events = path.join(d, 'cgroup.events');
  if (existsSync(events)) {
    await untilChanged(events, async () => parseFlatKeyed(await readOptional(events)).populated !== 1, ms, `${d} to empty`).catch((e: unknown) => {
      if (!isCode(e, 'ETIMEDOUT')) throw e;
    });
    return;
  }
  const pids = parsePids(await readOptional(path.join(d, 'cgroup.procs')));
  // None listed, yet busy: tasks in their exit that cgroup.procs no longer shows. The kernel tells
  // of their leaving nowhere on v1: tried again shortly.
  if (pids.length === 0) await sleep(Math.min(5, ms));
  else await exitsOf(pids, ms);
}
