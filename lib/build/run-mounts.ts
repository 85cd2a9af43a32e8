/**
 * RUN --mount (BuildKit's syntax): `type=cache` (a directory kept between builds under the store,
 * by id, default the target), `type=secret` (a file of the build's secrets, bound read-only, by
 * default at /run/secrets/<id>; with `env=NAME` a variable of the RUN instead, or as well with a
 * target), `type=bind` (a path of the context, a stage or an image, a copy
 * of it so that `rw` writes go nowhere) and `type=tmpfs`. None of them reaches the step's layer:
 * the mount points the runtime made for them in the writable layer are removed before the diff is
 * read, when the parent's layers lacked them. A secret's value is never in the cache key, the
 * history or a layer; a cache mount's contents are never in the key.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmdirSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { isCode, NotFoundError, ValidationError } from '../errors.js';
import { native } from '../native.js';
import { acquireLock } from '../storage/atomic.js';
import type { Mount } from '../runtime/options.js';
import { copyInto } from './copy.js';
import { LayeredRoot } from './layered-root.js';
import { matchSources, sourcesDigest, type SourceTree } from './source-tree.js';

export type MountSpec =
  | { type: 'cache'; target: string; id: string; sharing: 'shared' | 'private' | 'locked'; from?: string; source: string; readonly: boolean; mode: number; uid: number; gid: number }
  | { type: 'secret'; target: string | undefined; env?: string; id: string; required: boolean; mode: number; uid: number; gid: number }
  | { type: 'bind'; target: string; from?: string; source: string; readonly: boolean }
  | { type: 'tmpfs'; target: string; size?: number };

const bool = (v: string | undefined, what: string): boolean => {
  if (v === undefined || v === '' || v === 'true') return true;
  if (v === 'false') return false;
  throw new ValidationError(`--mount: ${what}=${v}: expected true or false`, 'mount');
};

const int = (v: string | undefined, dflt: number, what: string, radix = 10): number => {
  if (v === undefined) return dflt;
  const n = radix === 8 ? (/^0?[0-7]{1,4}$/.test(v) ? parseInt(v, 8) : NaN) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (Number.isNaN(n)) throw new ValidationError(`--mount: ${what}=${v}: expected a ${radix === 8 ? 'octal mode' : 'number'}`, 'mount');
  return n;
};

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** One `--mount=` value: comma-separated key=value fields, as BuildKit reads them. */
export function parseMount(spec: string): MountSpec {
  const f = new Map<string, string | undefined>();
  for (const field of spec.split(',')) {
    if (!field) continue;
    const eq = field.indexOf('=');
    const k = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    f.set(k, eq < 0 ? undefined : field.slice(eq + 1));
  }
  const known: Record<string, string[]> = {
    cache: ['id', 'sharing', 'from', 'source', 'src', 'ro', 'readonly', 'rw', 'readwrite', 'mode', 'uid', 'gid'],
    secret: ['id', 'required', 'mode', 'uid', 'gid', 'env'],
    bind: ['from', 'source', 'src', 'ro', 'readonly', 'rw', 'readwrite'],
    tmpfs: ['size'],
  };
  const type = f.get('type') ?? 'bind';
  if (!(type in known)) throw new ValidationError(`--mount: unsupported mount type ${JSON.stringify(type)} (nsbox has bind, cache, secret and tmpfs)`, 'mount');
  for (const k of f.keys()) {
    if (!['type', 'target', 'dst', 'destination', ...known[type]!].includes(k)) throw new ValidationError(`--mount: unexpected key '${k}' for type=${type}`, 'mount');
  }
  const rawTarget = f.get('target') ?? f.get('dst') ?? f.get('destination');
  const source = f.get('source') ?? f.get('src') ?? '';
  const readonly = f.has('ro') || f.has('readonly') ? bool(f.get('ro') ?? f.get('readonly'), 'readonly') : f.has('rw') || f.has('readwrite') ? !bool(f.get('rw') ?? f.get('readwrite'), 'rw') : undefined;
  const from = f.get('from');
  if (type === 'secret') {
    const id = f.get('id') ?? (rawTarget ? path.posix.basename(rawTarget) : undefined);
    if (!id) throw new ValidationError('--mount: type=secret needs an id or a target', 'mount');
    const env = f.get('env');
    if (env !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) throw new ValidationError(`--mount: env=${env}: not a variable name`, 'mount');
    // env= alone: the secret is a variable, no file; with a target too, both
    return { type, id, target: rawTarget ?? (env === undefined ? `/run/secrets/${id}` : undefined), ...(env !== undefined ? { env } : {}), required: f.has('required') ? bool(f.get('required'), 'required') : false, mode: int(f.get('mode'), 0o400, 'mode', 8), uid: int(f.get('uid'), 0, 'uid'), gid: int(f.get('gid'), 0, 'gid') };
  }
  if (!rawTarget) throw new ValidationError(`--mount: type=${type} needs a target`, 'mount');
  const target = path.posix.resolve('/', rawTarget);
  if (type === 'tmpfs') {
    const s = f.get('size');
    if (s === undefined) return { type, target };
    const m = /^(\d+)([a-zA-Z]*)$/.exec(s);
    const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) throw new ValidationError(`--mount: size=${s}: expected a size`, 'mount');
    return { type, target, size: Number(m[1]) * unit };
  }
  if (type === 'bind') return { type, target, source, readonly: readonly ?? true, ...(from !== undefined ? { from } : {}) };
  const sharing = f.get('sharing') ?? 'shared';
  if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw new ValidationError(`--mount: sharing=${sharing}: expected shared, private or locked`, 'mount');
  return { type: 'cache', target, id: f.get('id') || target, sharing, source, readonly: readonly ?? false, mode: int(f.get('mode'), 0o755, 'mode', 8), uid: int(f.get('uid'), 0, 'uid'), gid: int(f.get('gid'), 0, 'gid'), ...(from !== undefined ? { from } : {}) };
}

/** What the mounts add to the step's cache key: the specs (a secret's id, never its value) and a bind's source content. */
export function mountKey(specs: MountSpec[], bindDigest: (m: Extract<MountSpec, { type: 'bind' }>) => string): unknown[] {
  return specs.map((m) => (m.type === 'bind' ? { ...m, content: bindDigest(m) } : m));
}

export interface MountEnv {
  /** `<store>/build-cache-mounts`. */
  cacheDir: string;
  /** A private directory for this step's secrets and bind copies (removed by `release`). */
  scratch: string;
  secrets: ReadonlyMap<string, Buffer>;
  tree: (from: string | undefined) => Promise<SourceTree>;
  /** Stops a wait for a locked cache (another stage failed). */
  signal?: AbortSignal;
}

/** In-process holders of `sharing=locked` (and busy `private`) cache ids. */
const held = new Map<string, Promise<void>>();

/**
 * Holds cache `key` for one RUN: first among this process's builds (a queue), then among
 * processes (an flock on `<cache dir>.lock`, beside the directory, so not in the mount). `wait`
 * false (sharing=private): undefined at once when another RUN, here or elsewhere, holds it.
 */
async function holdCache(key: string, lockFile: string, wait: boolean, signal: AbortSignal | undefined): Promise<(() => void) | undefined> {
  if (!wait && held.has(key)) return undefined;
  for (let busy = held.get(key); busy; busy = held.get(key)) {
    await busy;
    signal?.throwIfAborted();
  }
  let unlock!: () => void;
  held.set(key, new Promise<void>((r) => (unlock = r)));
  const free = () => {
    held.delete(key);
    unlock();
  };
  let release: (() => void) | undefined;
  try {
    release = await acquireLock(lockFile, { wait, ...(signal ? { signal } : {}) });
  } catch (e) {
    free();
    throw e;
  }
  if (!release) {
    free();
    return undefined;
  }
  return () => {
    release();
    free();
  };
}

export interface PreparedMounts {
  mounts: Mount[];
  /** `NAME=value` of `type=secret,env=NAME`: the RUN's environment only. */
  env: string[];
  release: () => Promise<void>;
}

/** The runtime mounts for `specs`; `release` drops locks and temporary files. */
export async function prepareMounts(specs: MountSpec[], env: MountEnv): Promise<PreparedMounts> {
  const mounts: Mount[] = [];
  const vars: string[] = [];
  const unlocks: Array<() => void> = [];
  let n = 0;
  const release = async () => {
    for (const u of unlocks) u();
    rmSync(env.scratch, { recursive: true, force: true });
  };
  try {
    mkdirSync(env.scratch, { recursive: true, mode: 0o700 });
    for (const m of specs) {
      if (m.type === 'tmpfs') mounts.push({ type: 'tmpfs', target: m.target, readonly: false, ...(m.size ? { size: m.size } : {}) });
      else if (m.type === 'secret') {
        const value = env.secrets.get(m.id);
        if (value === undefined) {
          if (m.required) throw new NotFoundError(`secret ${m.id}: not provided (--secret id=${m.id},src=…)`, { path: m.id });
          continue;
        }
        if (m.env !== undefined) vars.push(`${m.env}=${value.toString('utf8')}`);
        if (m.target === undefined) continue;
        const file = path.join(env.scratch, `secret-${++n}`);
        writeFileSync(file, value, { mode: 0o600 });
        chownSync(file, m.uid, m.gid);
        chmodSync(file, m.mode);
        mounts.push({ type: 'bind', source: file, target: m.target, readonly: true, recursive: false });
      } else if (m.type === 'bind') {
        const src = await materialize(await env.tree(m.from), m.source, path.join(env.scratch, `bind-${++n}`));
        mounts.push({ type: 'bind', source: src, target: m.target, readonly: m.readonly, recursive: false });
      } else {
        const key = createHash('sha256').update(`${m.from ?? ''}\0${m.id}`).digest('hex');
        let dir = path.join(env.cacheDir, key);
        if (m.sharing !== 'shared') {
          mkdirSync(env.cacheDir, { recursive: true });
          const release = await holdCache(key, `${dir}.lock`, m.sharing === 'locked', env.signal);
          if (release) unlocks.push(release);
          else dir = mkdtempSync(path.join(env.scratch, 'cache-')); // BuildKit: a new, empty one for the second user
        }
        if (!existsSync(dir)) {
          const fresh = `${dir}.new-${process.pid}-${++n}`;
          mkdirSync(fresh, { recursive: true });
          // a cache with from= starts as a copy of that path
          if (m.from !== undefined) await materialize(await env.tree(m.from), m.source, fresh, true);
          chownSync(fresh, m.uid, m.gid);
          chmodSync(fresh, m.mode);
          mkdirSync(path.dirname(dir), { recursive: true });
          try {
            renameSync(fresh, dir);
          } catch (e) {
            // another build made it first: theirs is kept
            if (!existsSync(dir)) throw e;
            rmSync(fresh, { recursive: true, force: true });
          }
        }
        mounts.push({ type: 'bind', source: dir, target: m.target, readonly: m.readonly, recursive: false });
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { mounts, env: vars, release };
}

/** A copy of `source` in `tree` at `dest` (its contents for a directory); the path to bind. */
async function materialize(tree: SourceTree, source: string, dest: string, intoDir = false): Promise<string> {
  const items = matchSources(tree, source || '/');
  const st = tree.lstat(items[0]!);
  const isDir = items.length > 1 || st?.isDirectory() === true;
  mkdirSync(dest, { recursive: true, mode: 0o755 });
  const name = isDir || intoDir ? '/' : `/${path.posix.basename(items[0]!) || 'file'}`;
  await copyInto(dest, new LayeredRoot([]), { tree, items, wildcard: false, dest: name, workdir: '/', unpackArchives: false });
  return isDir || intoDir ? dest : path.join(dest, name);
}

export function bindSourceDigest(tree: SourceTree, source: string): string {
  return sourcesDigest(tree, matchSources(tree, source || '/'));
}

/**
 * Removes from `upper` the mount points the runtime made for `targets` (and the directories made
 * on the way to them) that the parent's layers lack and the step left empty.
 */
export function removeMountPoints(upper: string, lower: LayeredRoot, targets: string[]): void {
  for (const t of targets) {
    for (let p = path.posix.resolve('/', t); p !== '/'; p = path.posix.dirname(p)) {
      const below = lower.lookup(p.slice(1));
      if (below) {
        // a directory of the parent's the stub copied up: dropped when nothing else changed in it
        if (!copiedUpOnly(path.join(upper, p), below.st)) break;
        rmdirSync(path.join(upper, p));
        continue;
      }
      const abs = path.join(upper, p);
      let st;
      try {
        st = lstatSync(abs);
      } catch (e) {
        if (!isCode(e, 'ENOENT')) throw e;
        break; // not in the upper dir: nothing made here
      }
      if (st.isDirectory()) {
        if (readdirSync(abs).length) break;
        rmdirSync(abs);
      } else if (st.isFile() && st.size === 0) rmSync(abs);
      else break;
    }
  }
}

/** Whether `abs` (in the upper dir) is an empty, non-opaque directory with the lower one's owner and mode. */
function copiedUpOnly(abs: string, lower: Stats): boolean {
  let st: Stats;
  try {
    st = lstatSync(abs);
  } catch (e) {
    if (!isCode(e, 'ENOENT')) throw e;
    return false; // not copied up at all
  }
  if (!st.isDirectory() || !lower.isDirectory() || st.mode !== lower.mode || st.uid !== lower.uid || st.gid !== lower.gid) return false;
  if (readdirSync(abs).length) return false;
  // overlay's own bookkeeping (origin, impure) is fine; opaque or any other xattr is a change
  return native.llistxattr(abs).every((n) => /^(trusted|user)\.overlay\.(origin|impure)$/.test(n));
}
