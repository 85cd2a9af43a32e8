/**
 * The setup ops of a config's `mounts`, `linux.devices` and the default devices, on the rootfs
 * (before pivot_root): runc's mount option table, binds with their attributes set per mount
 * (mount_setattr), idmapped binds, propagation as a mount of its own, cgroup mounts shown as
 * lib/runtime does.
 */
import { statSync } from 'node:fs';
import { isAbsolute, join, posix as path } from 'node:path';
import { NotFoundError, NsboxError, ValidationError } from '../errors.js';
import type { SetupOp } from '../native.js';
import { MOUNT_ATTR, MS, formatIdMap, mkdirs, type CgroupView } from '../runtime/plan.js';
import type { OciDevice, OciIdMapping, OciMount } from './config.js';

const MS_MORE = { SYNC: 16, MANDLOCK: 64, DIRSYNC: 128, NOATIME: 1024, NODIRATIME: 2048, SILENT: 32768, RELATIME: 1 << 21, UNBINDABLE: 1 << 17, SLAVE: 1 << 19, SHARED: 1 << 20, LAZYTIME: 1 << 25 } as const;

/** Option → [flags to set, flags to clear]. */
const FLAGS: Record<string, [number, number]> = {
  ro: [MS.RDONLY, 0], rw: [0, MS.RDONLY], nosuid: [MS.NOSUID, 0], suid: [0, MS.NOSUID], nodev: [MS.NODEV, 0], dev: [0, MS.NODEV],
  noexec: [MS.NOEXEC, 0], exec: [0, MS.NOEXEC], sync: [MS_MORE.SYNC, 0], async: [0, MS_MORE.SYNC], remount: [MS.REMOUNT, 0],
  mand: [MS_MORE.MANDLOCK, 0], nomand: [0, MS_MORE.MANDLOCK], dirsync: [MS_MORE.DIRSYNC, 0], noatime: [MS_MORE.NOATIME, 0], atime: [0, MS_MORE.NOATIME],
  nodiratime: [MS_MORE.NODIRATIME, 0], diratime: [0, MS_MORE.NODIRATIME], relatime: [MS_MORE.RELATIME, 0], norelatime: [0, MS_MORE.RELATIME],
  strictatime: [MS.STRICTATIME, 0], nostrictatime: [0, MS.STRICTATIME], silent: [MS_MORE.SILENT, 0], loud: [0, MS_MORE.SILENT],
  lazytime: [MS_MORE.LAZYTIME, 0], nolazytime: [0, MS_MORE.LAZYTIME], bind: [MS.BIND, 0], rbind: [MS.BIND | MS.REC, 0],
};
export const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS_MORE.SHARED, rshared: MS_MORE.SHARED | MS.REC,
  slave: MS_MORE.SLAVE, rslave: MS_MORE.SLAVE | MS.REC, unbindable: MS_MORE.UNBINDABLE, runbindable: MS_MORE.UNBINDABLE | MS.REC,
};
/** Per-mount attributes a bind gets with mount_setattr (flags on a bind itself are ignored by the kernel). */
const ATTRS: Array<[number, number]> = [[MS.RDONLY, MOUNT_ATTR.RDONLY], [MS.NOSUID, MOUNT_ATTR.NOSUID], [MS.NODEV, MOUNT_ATTR.NODEV], [MS.NOEXEC, MOUNT_ATTR.NOEXEC]];

export interface ParsedMountOptions {
  flags: number;
  propagation: number[];
  data: string[];
  /** `idmap` / `ridmap` (runtime-spec 1.2): the bind is idmapped; ridmap: every mount of an rbind's tree. */
  idmap?: 'idmap' | 'ridmap';
}

/** runc's reading of a mount's `options`: flags, propagation changes, and the rest as mount data. */
export function parseMountOptions(options: string[] = []): ParsedMountOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  let idmap: ParsedMountOptions['idmap'];
  for (const o of options) {
    const f = FLAGS[o];
    if (f) flags = (flags | f[0]) & ~f[1];
    else if (PROPAGATION[o] !== undefined) propagation.push(PROPAGATION[o]);
    else if (o === 'idmap' || o === 'ridmap') idmap = idmap === 'ridmap' ? idmap : o;
    else if (o === 'tmpcopyup') continue; // not supported: the mount is made without
    else data.push(o);
  }
  return { flags, propagation, data, ...(idmap ? { idmap } : {}) };
}

export interface MountContext {
  root: string;
  bundle: string;
  /** The host's cgroup hierarchies, with this container's directories. */
  cgroups: CgroupView[];
  userns: boolean;
  /** Is the caller root in the initial user namespace (idmapped mounts need it)? */
  privileged?: boolean;
  /** The container's own user namespace maps (uid_map format), which `idmap` without mappings uses. */
  idMaps?: { uidMap: string; gidMap: string };
  /** Is a bind source a directory (plan-cache.ts records the answers; stat() by default)? */
  isDirectory?: (p: string, field: string) => boolean;
}

export function isDirectory(p: string, field: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new NotFoundError(`${field}: mount source ${p} does not exist`, { path: p, cause: e });
  }
}

function cgroupOps(target: string, ctx: MountContext, readonly: boolean): SetupOp[] {
  const fl = MS.NOSUID | MS.NOEXEC | MS.NODEV;
  const ops: SetupOp[] = [];
  const only = ctx.cgroups.length === 1 && ctx.cgroups[0]!.name === '' ? ctx.cgroups[0] : undefined;
  if (only) {
    ops.push(ctx.userns ? { op: 'bind', source: only.hostDir, target, recursive: true } : { op: 'mount', source: 'cgroup2', target, fstype: 'cgroup2', flags: fl });
  } else {
    ops.push({ op: 'mount', source: 'tmpfs', target, fstype: 'tmpfs', flags: fl, data: 'mode=755' });
    for (const v of ctx.cgroups) {
      const dir = path.join(target, v.name);
      ops.push({ op: 'mkdir', target: dir, mode: 0o755 });
      if (ctx.userns && v.fstype === 'cgroup') ops.push({ op: 'bind', source: v.hostDir, target: dir, recursive: true, optional: true });
      else ops.push({ op: 'mount', source: v.fstype, target: dir, fstype: v.fstype, flags: fl, data: v.data, optional: true });
    }
  }
  if (readonly) ops.push({ op: 'setattr', target, set: MOUNT_ATTR.RDONLY, recursive: true });
  return ops;
}

/** The most entries the kernel takes in a uid_map or gid_map. */
const MAX_MAP_ENTRIES = 340;

/**
 * One of a mount's mappings as a uid_map text, checked as the kernel would check it when the map
 * is written (after the container's cgroup exists): ranges within 32 bits, neither side overlapping.
 */
function idMapText(m: OciIdMapping[], field: string): string {
  if (m.length > MAX_MAP_ENTRIES) throw new ValidationError(`invalid config.json: ${field}: at most ${MAX_MAP_ENTRIES} entries (the kernel's limit)`, field);
  m.forEach((e, j) => {
    for (const k of ['containerID', 'hostID'] as const) {
      if (e[k] + e.size > 2 ** 32) throw new ValidationError(`invalid config.json: ${field}.${j}: ${k} ${e[k]} + size ${e.size} passes 2^32`, `${field}.${j}`);
    }
    for (let o = 0; o < j; o++) {
      for (const k of ['containerID', 'hostID'] as const) {
        const a = m[o]!;
        if (e[k] < a[k] + a.size && a[k] < e[k] + e.size) throw new ValidationError(`invalid config.json: ${field}.${j}: its ${k} range overlaps entry ${o}'s`, `${field}.${j}`);
      }
    }
  });
  return formatIdMap(m);
}

/**
 * The maps of an idmapped bind, or undefined for a plain one. runtime-spec: `uidMappings` and
 * `gidMappings` convert the ids of the source file system for the mount, in the format of the user
 * namespace mappings (a file owned by containerID on disk is seen as owned by host id hostID, which
 * the container's own user namespace then shows as whatever it maps that host id to); they come
 * together; `idmap`/`ridmap` without them take the container's user namespace mappings.
 */
function idmapOf(m: OciMount, opts: ParsedMountOptions, field: string, isBind: boolean, ctx: MountContext): { uidMap: string; gidMap: string } | undefined {
  const um = m.uidMappings ?? [];
  const gm = m.gidMappings ?? [];
  if (!opts.idmap && um.length === 0 && gm.length === 0) return undefined;
  const what = `invalid config.json: ${field}`;
  if (!isBind) throw new ValidationError(`${what}: idmapped mounts (uidMappings, gidMappings, idmap, ridmap) are only supported for bind mounts`, field);
  if ((um.length === 0) !== (gm.length === 0)) {
    const missing = um.length === 0 ? 'uidMappings' : 'gidMappings';
    throw new ValidationError(`${what}.${missing}: uidMappings and gidMappings of an idmapped mount are given together`, `${field}.${missing}`);
  }
  if (ctx.privileged === false) throw new ValidationError(`${what}: idmapped mounts need root in the initial user namespace (mount_setattr MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN there)`, field);
  if (um.length === 0) {
    if (!ctx.idMaps) throw new ValidationError(`${what}: ${opts.idmap} without uidMappings and gidMappings takes the container's user namespace mappings, and it has none (a new user namespace with linux.uidMappings)`, field);
    return ctx.idMaps;
  }
  return { uidMap: idMapText(um, `${field}.uidMappings`), gidMap: idMapText(gm, `${field}.gidMappings`) };
}

/** The ops of one entry of `mounts` (index i, for messages). */
export function mountOps(m: OciMount, i: number, ctx: MountContext): SetupOp[] {
  const field = `mounts.${i}`;
  if (!m.destination.startsWith('/')) throw new ValidationError(`invalid config.json: ${field}.destination: must be an absolute path`, `${field}.destination`);
  const target = path.join(ctx.root, m.destination);
  const opts = parseMountOptions(m.options);
  const isBind = m.type === 'bind' || (opts.flags & MS.BIND) !== 0;
  const idmap = idmapOf(m, opts, field, isBind, ctx);
  const ops: SetupOp[] = [];
  if (isBind) {
    if (!m.source) throw new ValidationError(`invalid config.json: ${field}.source: a bind mount needs a source`, `${field}.source`);
    const source = isAbsolute(m.source) ? m.source : join(ctx.bundle, m.source);
    if ((ctx.isDirectory ?? isDirectory)(source, field)) ops.push(...mkdirs(ctx.root, m.destination));
    else ops.push(...mkdirs(ctx.root, path.dirname(m.destination)), { op: 'touch', target, mode: 0o644 });
    let set = 0;
    for (const [ms, attr] of ATTRS) if (opts.flags & ms) set |= attr;
    const recursive = (opts.flags & MS.REC) !== 0;
    if (idmap) ops.push({ op: 'idmap_bind', source, target, ...idmap, recursive, idmapRecursive: opts.idmap === 'ridmap', set });
    else ops.push({ op: 'bind', source, target, recursive, set });
  } else if (m.type === 'cgroup' || m.type === 'cgroup2') {
    ops.push(...mkdirs(ctx.root, m.destination), ...cgroupOps(target, ctx, (opts.flags & MS.RDONLY) !== 0));
  } else {
    if (!m.type) throw new ValidationError(`invalid config.json: ${field}.type: needed for a mount that is not a bind`, `${field}.type`);
    ops.push(...mkdirs(ctx.root, m.destination), {
      op: 'mount',
      source: m.source ?? m.type,
      target,
      fstype: m.type,
      flags: opts.flags & ~MS.REC,
      ...(opts.data.length ? { data: opts.data.join(',') } : {}),
    });
  }
  for (const p of opts.propagation) ops.push({ op: 'mount', target, flags: p });
  return ops;
}

/**
 * A failed spawn, worded for the idmapped mount it failed on (the addon names the op's target as
 * its path), or the error as it was. EINVAL from MOUNT_ATTR_IDMAP is the file system saying no.
 */
export function explainIdmapFailure(e: unknown, mounts: OciMount[], root: string): unknown {
  if (!(e instanceof NsboxError) || !e.message.startsWith('idmapped bind ') || e.path === undefined) return e;
  const i = mounts.findIndex((m) => m.destination.startsWith('/') && path.join(root, m.destination) === e.path);
  if (i < 0) return e;
  const m = mounts[i]!;
  const why = e.syscall === 'mount_setattr' && e.code === 'EINVAL'
    ? `the file system of ${m.source} cannot be idmapped (its type has no idmapped mounts on this kernel${m.options?.includes('ridmap') ? ', or one mounted under it has not' : ''})`
    : 'the idmapped mount failed';
  return new NsboxError(`mounts.${i} (${m.destination}): ${why}: ${e.message}`, {
    code: e.code, ...(e.errno !== undefined ? { errno: e.errno } : {}), ...(e.syscall ? { syscall: e.syscall } : {}), path: e.path, cause: e,
  });
}

const S_IF = { c: 0o020000, u: 0o020000, b: 0o060000, p: 0o010000 } as const;

/** The devices every container has (runtime-spec "Default Devices"). */
export const DEFAULT_DEVICES: OciDevice[] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
].map(([name, major, minor]) => ({ type: 'c' as const, path: `/dev/${name}`, major: major as number, minor: minor as number, fileMode: 0o666, uid: 0, gid: 0 }));

/**
 * Device nodes: made with mknod where allowed (root, no user namespace), else bound from the
 * host's node of the same path. Then /dev's symlinks (fd, stdio, ptmx) and the console.
 */
export function deviceOps(root: string, devices: OciDevice[], canMknod: boolean, consolePath: string | undefined): SetupOp[] {
  const ops: SetupOp[] = [];
  const seen = new Set<string>();
  for (const d of [...DEFAULT_DEVICES, ...devices]) {
    if (seen.has(d.path)) continue;
    seen.add(d.path);
    const target = path.join(root, d.path);
    ops.push(...mkdirs(root, path.dirname(d.path)));
    const mode = d.fileMode ?? 0o666;
    if (canMknod) {
      ops.push({ op: 'mknod', target, mode: S_IF[d.type] | mode, major: d.major ?? 0, minor: d.minor ?? 0 }, { op: 'chmod', target, mode });
    } else {
      ops.push({ op: 'touch', target, mode }, { op: 'bind', source: d.path, target });
    }
  }
  const dev = path.join(root, '/dev');
  ops.push(
    { op: 'symlink', value: '/proc/self/fd', target: path.join(dev, 'fd') },
    { op: 'symlink', value: '/proc/self/fd/0', target: path.join(dev, 'stdin') },
    { op: 'symlink', value: '/proc/self/fd/1', target: path.join(dev, 'stdout') },
    { op: 'symlink', value: '/proc/self/fd/2', target: path.join(dev, 'stderr') },
    { op: 'symlink', value: 'pts/ptmx', target: path.join(dev, 'ptmx') },
  );
  if (consolePath) ops.push({ op: 'touch', target: path.join(dev, 'console'), mode: 0o620 }, { op: 'bind', source: consolePath, target: path.join(dev, 'console') });
  return ops;
}
