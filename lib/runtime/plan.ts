/**
 * Turns a validated container config plus facts about the host into the flat list of setup ops
 * the native child runs (bubblewrap's idea: setup is data). Pure: unit-tested without root.
 */
import { posix as path } from 'node:path';
import type { SetupOp } from '../native.js';
import type { ContainerConfig, IdMapEntry, Mount } from './options.js';

// Kernel constants (stable ABI); the addon exports the same values.
export const CLONE = {
  NEWNS: 0x00020000, NEWCGROUP: 0x02000000, NEWUTS: 0x04000000, NEWIPC: 0x08000000,
  NEWUSER: 0x10000000, NEWPID: 0x20000000, NEWNET: 0x40000000, NEWTIME: 0x00000080,
} as const;
export const MS = {
  RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, REMOUNT: 32, BIND: 4096, REC: 16384, PRIVATE: 1 << 18, STRICTATIME: 1 << 24,
} as const;
export const MOUNT_ATTR = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8 } as const;

/** One cgroup hierarchy to show at /sys/fs/cgroup/<name> inside the container. */
export interface CgroupView {
  /** Directory name under /sys/fs/cgroup ('memory', 'unified', 'systemd'); '' for a cgroup2-only host. */
  name: string;
  fstype: 'cgroup' | 'cgroup2';
  /** Mount data for a cgroup v1 hierarchy ('memory', 'name=systemd'). */
  data: string;
  /** Host directory of the container's cgroup in this hierarchy: bound instead when mounting is not allowed. */
  hostDir: string;
}

/** What the plan needs to know about the host and this container, gathered by the caller. */
export interface PlanContext {
  id: string;
  /** Host path of the root: the rootfs, or the (empty) staging dir of a host sandbox. */
  root: string;
  sandbox: boolean;
  /** Top-level host entries a sandbox gets: directories bound read-only, symlinks recreated. */
  sandboxEntries: Array<{ name: string; symlink?: string }>;
  /** Is the caller root in the initial user namespace (mknod allowed, maps written directly)? */
  privileged: boolean;
  hostUid: number;
  hostGid: number;
  cgroups: CgroupView[];
  /** For each bind mount (by index): is the source a directory? */
  bindIsDir: boolean[];
  /** Host path of the pty slave when the container has a terminal (bound to /dev/console). */
  consolePath?: string;
  /** The caller's subordinate ids and the uidmap helpers, when it is unprivileged and has them. */
  subIds?: SubIds;
  /** Capabilities, no_new_privs and seccomp for the process (absent: none of them are changed). */
  security?: ProcessSecurity;
  /**
   * Build the root as an overlay of these dirs (lower: topmost first) on `root`, inside the
   * container's mount namespace. `volatile`: the upper is thrown away with the container (see
   * ContainerOptions.volatileLayer; a restart drops the mark of the last volatile mount first).
   */
  overlay?: { lower: string[]; upper: string; work: string; volatile?: boolean };
}

export interface ContainerPlanParts {
  cloneFlags: number;
  ops: SetupOp[];
  uidMap?: string;
  gidMap?: string;
  denySetgroups: boolean;
  uidMapper?: string;
  gidMapper?: string;
  user: { uid: number; gid: number; groups?: number[] };
}

/** What crun's default config (`crun spec`) hides and makes read-only under /proc and /sys. */
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const DEVICES: Array<[string, number, number]> = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];
const S_IFCHR = 0o020000;

/** Flags for clone3 (CLONE_NEWCGROUP is done by an op instead, see buildContainerPlan). */
export function cloneFlagsFor(ns: ContainerConfig['namespaces']): number {
  // A network namespace given by path is joined by the spawning thread (SpawnPlan.netns), not made.
  return namespaceFlags(ns) & ~CLONE.NEWCGROUP & ~(typeof ns.net === 'string' ? CLONE.NEWNET : 0);
}

/** Every namespace the container has of its own, as CLONE_NEW* flags (what exec joins). */
export function namespaceFlags(ns: ContainerConfig['namespaces']): number {
  let f = ns.cgroup ? CLONE.NEWCGROUP : 0;
  if (ns.user !== false) f |= CLONE.NEWUSER;
  if (ns.pid) f |= CLONE.NEWPID;
  if (ns.mount) f |= CLONE.NEWNS;
  if (ns.net) f |= CLONE.NEWNET;
  if (ns.ipc) f |= CLONE.NEWIPC;
  if (ns.uts) f |= CLONE.NEWUTS;
  if (ns.time) f |= CLONE.NEWTIME;
  return f;
}

export function parseUser(user: ContainerConfig['user']): { uid: number; gid: number; groups?: number[] } {
  if (user === undefined) return { uid: 0, gid: 0 };
  if (typeof user === 'number') return { uid: user, gid: 0 };
  if (typeof user === 'string') {
    const [u, g] = user.split(':');
    return { uid: Number(u), gid: g === undefined ? 0 : Number(g) };
  }
  return { uid: user.uid, gid: user.gid ?? 0, ...(user.groups ? { groups: user.groups } : {}) };
}

export const formatIdMap = (m: IdMapEntry[]) => m.map((e) => `${e.containerID} ${e.hostID} ${e.size}`).join('\n') + '\n';

/** Subordinate ids the caller may map (/etc/subuid, /etc/subgid) and the helpers that map them. */
export interface SubIds {
  uid: { start: number; count: number };
  gid: { start: number; count: number };
  newuidmap: string;
  newgidmap: string;
}

/**
 * Maps for a user namespace: as asked; by default the caller's own ids as root inside (like
 * `unshare -r`), plus, for an unprivileged caller with subordinate ids, those as 1… (as podman does).
 * Maps an unprivileged caller cannot write itself go through newuidmap / newgidmap.
 */
export function idMaps(ns: ContainerConfig['namespaces'], ctx: Pick<PlanContext, 'hostUid' | 'hostGid' | 'privileged' | 'subIds'>) {
  if (ns.user === false) return undefined;
  const asked = ns.user === true ? {} : ns.user;
  const sub = ctx.privileged ? undefined : ctx.subIds;
  const range = (own: number, r: { start: number; count: number } | undefined): IdMapEntry[] => [
    { containerID: 0, hostID: own, size: 1 },
    ...(r ? [{ containerID: 1, hostID: r.start, size: Math.min(r.count, 65536) }] : []),
  ];
  const uid = asked.uidMap ?? range(ctx.hostUid, sub?.uid);
  const gid = asked.gidMap ?? range(ctx.hostGid, sub?.gid);
  const onlySelf = (m: IdMapEntry[], own: number) => m.length === 1 && m[0]!.hostID === own && m[0]!.size === 1;
  const mappers = ctx.privileged || !sub ? {} : {
    ...(onlySelf(uid, ctx.hostUid) ? {} : { uidMapper: sub.newuidmap }),
    ...(onlySelf(gid, ctx.hostGid) ? {} : { gidMapper: sub.newgidmap }),
  };
  return { uidMap: formatIdMap(uid), gidMap: formatIdMap(gid), gidEntries: gid, ...mappers };
}

const inRoot = (root: string, p: string) => path.join(root, p);

function sizeData(size: number | string | undefined): string {
  if (size === undefined) return '';
  return `,size=${typeof size === 'number' ? String(size) : size}`;
}

function userMountOps(root: string, m: Mount, isDir: boolean): SetupOp[] {
  const target = inRoot(root, m.target);
  if (m.type === 'tmpfs') {
    const mode = (m.mode ?? 0o1777).toString(8);
    const flags = MS.NOSUID | MS.NODEV | (m.readonly ? MS.RDONLY : 0);
    return [
      ...mkdirs(root, m.target),
      { op: 'mount', source: 'tmpfs', target, fstype: 'tmpfs', flags, data: `mode=${mode}${sizeData(m.size)}` },
    ];
  }
  const make: SetupOp[] = isDir ? mkdirs(root, m.target) : [...mkdirs(root, path.dirname(m.target)), { op: 'touch', target, mode: 0o644 }];
  return [...make, { op: 'bind', source: m.source, target, recursive: m.recursive, set: m.readonly ? MOUNT_ATTR.RDONLY : 0 }];
}

/** mkdir -p of a container path under root (each component, EEXIST is fine). */
export function mkdirs(root: string, p: string, mode = 0o755): SetupOp[] {
  const out: SetupOp[] = [];
  let cur = '/';
  for (const part of p.split('/').filter(Boolean)) {
    cur = path.join(cur, part);
    out.push({ op: 'mkdir', target: inRoot(root, cur), mode });
  }
  return out;
}

function devOps(root: string, ctx: PlanContext, userns: boolean, gid5Mapped: boolean): SetupOp[] {
  const dev = inRoot(root, '/dev');
  const ops: SetupOp[] = [
    { op: 'mkdir', target: dev, mode: 0o755 },
    { op: 'mount', source: 'tmpfs', target: dev, fstype: 'tmpfs', flags: MS.NOSUID | MS.STRICTATIME | (allowDevices(ctx) ? 0 : MS.NODEV), data: 'mode=755,size=65536k' },
  ];
  for (const [name, major, minor] of DEVICES) {
    const target = path.join(dev, name);
    if (ctx.privileged && !userns && allowDevices(ctx)) {
      ops.push({ op: 'mknod', target, mode: S_IFCHR | 0o666, major, minor }, { op: 'chmod', target, mode: 0o666 });
    } else {
      // Bound from the host's /dev (mknod is not allowed in a user namespace, and /dev itself is
      // nodev): each bind is a mount of its own, usable, while a node made with mknod is not.
      ops.push({ op: 'touch', target, mode: 0o666 }, { op: 'bind', source: `/dev/${name}`, target });
    }
  }
  const pts = path.join(dev, 'pts');
  ops.push(
    { op: 'mkdir', target: pts, mode: 0o755 },
    { op: 'mount', source: 'devpts', target: pts, fstype: 'devpts', flags: MS.NOSUID | MS.NOEXEC, data: `newinstance,ptmxmode=0666,mode=0620${gid5Mapped ? ',gid=5' : ''}` },
    { op: 'symlink', value: 'pts/ptmx', target: path.join(dev, 'ptmx') },
    { op: 'mkdir', target: path.join(dev, 'shm'), mode: 0o1777 },
    { op: 'mount', source: 'shm', target: path.join(dev, 'shm'), fstype: 'tmpfs', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, data: 'mode=1777,size=65536k' },
    { op: 'mkdir', target: path.join(dev, 'mqueue'), mode: 0o755 },
    { op: 'mount', source: 'mqueue', target: path.join(dev, 'mqueue'), fstype: 'mqueue', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, optional: true },
    { op: 'symlink', value: '/proc/self/fd', target: path.join(dev, 'fd') },
    { op: 'symlink', value: '/proc/self/fd/0', target: path.join(dev, 'stdin') },
    { op: 'symlink', value: '/proc/self/fd/1', target: path.join(dev, 'stdout') },
    { op: 'symlink', value: '/proc/self/fd/2', target: path.join(dev, 'stderr') },
    { op: 'symlink', value: '/proc/kcore', target: path.join(dev, 'core') },
  );
  if (ctx.consolePath) {
    ops.push({ op: 'touch', target: path.join(dev, 'console'), mode: 0o620 }, { op: 'bind', source: ctx.consolePath, target: path.join(dev, 'console') });
  }
  return ops;
}

function sysOps(root: string, cfg: ContainerConfig, ctx: PlanContext, userns: boolean): SetupOp[] {
  const sys = inRoot(root, '/sys');
  const ops: SetupOp[] = [{ op: 'mkdir', target: sys, mode: 0o555 }];
  if (userns && cfg.namespaces.net !== true) {
    // sysfs can only be mounted by the owner of the network namespace: show the host's, read-only.
    ops.push({ op: 'bind', source: '/sys', target: sys, recursive: true, set: MOUNT_ATTR.RDONLY });
    return ops;
  }
  ops.push({ op: 'mount', source: 'sysfs', target: sys, fstype: 'sysfs', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY });
  const cg = path.join(sys, 'fs/cgroup');
  const fl = MS.NOSUID | MS.NOEXEC | MS.NODEV;
  // A new mount of an existing hierarchy is made read-only per mount (mount_setattr), never through
  // mount flags that could reach the shared superblock.
  const only = ctx.cgroups.length === 1 && ctx.cgroups[0]!.name === '' ? ctx.cgroups[0] : undefined;
  if (only) {
    if (userns) ops.push({ op: 'bind', source: only.hostDir, target: cg, recursive: true });
    else ops.push({ op: 'mount', source: 'cgroup2', target: cg, fstype: 'cgroup2', flags: fl });
  } else if (ctx.cgroups.length > 0) {
    ops.push({ op: 'mount', source: 'tmpfs', target: cg, fstype: 'tmpfs', flags: fl, data: 'mode=755' });
    for (const v of ctx.cgroups) {
      const dir = path.join(cg, v.name);
      ops.push({ op: 'mkdir', target: dir, mode: 0o755 });
      // cgroup v1 cannot be mounted inside a user namespace: bind the container's own directory there.
      if (userns && v.fstype === 'cgroup') ops.push({ op: 'bind', source: v.hostDir, target: dir, recursive: true, optional: true });
      else ops.push({ op: 'mount', source: v.fstype, target: dir, fstype: v.fstype, flags: fl, data: v.data, optional: true });
    }
  } else {
    return ops;
  }
  ops.push({ op: 'setattr', target: cg, set: MOUNT_ATTR.RDONLY, recursive: true });
  return ops;
}

export interface ProcessSecurity {
  /** Bit mask of the capabilities the process may have (its bounding set; root's effective set). */
  caps: number;
  /** Capabilities a non-root user keeps across execve (ambient), a subset of caps. */
  ambient: number;
  noNewPrivileges: boolean;
  /** A compiled seccomp program (struct sock_filter[]), installed last. */
  seccomp?: Buffer;
  /** Masked and read-only paths are left out. */
  privileged?: boolean;
}

/** Device nodes made inside work only in privileged containers. */
const allowDevices = (ctx: PlanContext) => ctx.security?.privileged === true;

const PR_SET_KEEPCAPS = 8;
const PR_SET_NO_NEW_PRIVS = 38;

/**
 * The ids and the security of the process, in the order the kernel needs: the bounding set is
 * reduced while still root (it takes CAP_SETPCAP), ids are changed (keeping capabilities only when
 * ambient ones are asked for), then the sets, no_new_privs, and seccomp last, right before execve.
 */
export function processOps(user: { uid: number; gid: number; groups?: number[] }, setIds: boolean, userns: boolean, privileged: boolean, sec?: ProcessSecurity): SetupOp[] {
  const ops: SetupOp[] = [];
  // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN: do it first, while still root
  // (docker's profile allows what follows: capset, prctl, setresuid, execve).
  const seccompFirst = sec?.seccomp !== undefined && !sec.noNewPrivileges;
  if (sec?.seccomp && seccompFirst) ops.push({ op: 'seccomp', filter: sec.seccomp });
  if (sec) {
    ops.push({ op: 'capbset', caps: sec.caps });
    if (sec.ambient) ops.push({ op: 'prctl', option: PR_SET_KEEPCAPS, arg: 1 });
  }
  if (setIds) ops.push({ op: 'setids', uid: user.uid, gid: user.gid, ...(privileged || !userns ? { groups: user.groups ?? [] } : {}) });
  if (sec) {
    const sets = user.uid === 0 ? sec.caps : sec.ambient;
    ops.push({ op: 'capset', effective: sets, permitted: sets, inheritable: sets });
    if (sec.ambient) ops.push({ op: 'ambient', caps: sec.ambient });
    if (sec.noNewPrivileges) ops.push({ op: 'prctl', option: PR_SET_NO_NEW_PRIVS, arg: 1 });
    if (sec.seccomp && !seccompFirst) ops.push({ op: 'seccomp', filter: sec.seccomp });
  }
  return ops;
}

/** The whole setup of a new container: namespaces, root, /proc, /dev, /sys, user mounts, pivot_root, ids. */
export function buildContainerPlan(cfg: ContainerConfig, ctx: PlanContext): ContainerPlanParts {
  const ns = cfg.namespaces;
  const userns = ns.user !== false;
  const maps = idMaps(ns, ctx);
  const gid5Mapped = !userns || (maps?.gidEntries.some((e) => e.containerID <= 5 && 5 < e.containerID + e.size) ?? false);
  const user = parseUser(cfg.user);
  const ops: SetupOp[] = [];
  const root = ctx.root;

  // After clone the child still has the host's ids, which the new user namespace does not map:
  // become the namespace's root before creating anything.
  if (userns) ops.push({ op: 'setids', uid: 0, gid: 0, ...(ctx.privileged ? { groups: [] } : {}) });
  // The cgroup namespace is made here, not by clone3: its root is the cgroup the child is in when it
  // is made, and on cgroup v1 the parent moves the child into the container's cgroup after clone.
  if (ns.cgroup) ops.push({ op: 'unshare', flags: CLONE.NEWCGROUP });
  if (ns.mount) {
    ops.push({ op: 'mount', target: '/', flags: MS.REC | MS.PRIVATE });
    if (ctx.sandbox) {
      ops.push({ op: 'mount', source: 'tmpfs', target: root, fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV, data: 'mode=755,size=1m' });
      for (const e of ctx.sandboxEntries) {
        const target = inRoot(root, e.name);
        if (e.symlink !== undefined) ops.push({ op: 'symlink', value: e.symlink, target });
        else ops.push({ op: 'mkdir', target, mode: 0o755 }, { op: 'bind', source: `/${e.name}`, target, recursive: true, set: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NODEV });
      }
      ops.push(
        { op: 'mkdir', target: inRoot(root, '/tmp'), mode: 0o1777 },
        { op: 'mount', source: 'tmpfs', target: inRoot(root, '/tmp'), fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV, data: 'mode=1777' },
        { op: 'mkdir', target: inRoot(root, '/root'), mode: 0o700 },
      );
    } else if (ctx.overlay) {
      // Mounted in the container's own mount namespace: it goes away with the container, and the
      // host's mount table never sees it.
      const { lower, upper, work } = ctx.overlay;
      // Without privileges the layers carry user.overlay.* metadata (see lib/privilege.ts).
      const data = `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}${ctx.privileged ? '' : ',userxattr'}`;
      // volatile: the unmount at the container's exit skips overlayfs' sync of the whole upper file
      // system (~6 ms between the init's exit and its parent's notice). Safe only for an upper that
      // is deleted with the container: overlayfs leaves work/incompat/volatile behind, and refuses
      // to mount that work dir again until it is gone (readyVolatileLayer drops it for a restart in
      // the same boot). A kernel before 5.10 refuses the option: then the plain data.
      if (ctx.overlay.volatile) ops.push({ op: 'mount', source: 'overlay', target: root, fstype: 'overlay', data: `${data},volatile`, fallbackData: data });
      else ops.push({ op: 'mount', source: 'overlay', target: root, fstype: 'overlay', data });
    } else {
      ops.push({ op: 'bind', source: root, target: root, recursive: true });
    }
    ops.push(
      { op: 'mkdir', target: inRoot(root, '/proc'), mode: 0o555 },
      // A new proc needs a pid namespace of the container's own user namespace: sharing the host's
      // from inside a user namespace, the host's /proc is bound instead.
      userns && !ns.pid
        ? { op: 'bind', source: '/proc', target: inRoot(root, '/proc'), recursive: true }
        : { op: 'mount', source: 'proc', target: inRoot(root, '/proc'), fstype: 'proc', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV },
      ...devOps(root, ctx, userns, gid5Mapped),
      ...sysOps(root, cfg, ctx, userns),
    );
    cfg.mounts.forEach((m, i) => ops.push(...userMountOps(root, m, ctx.bindIsDir[i] ?? true)));
    ops.push({ op: 'pivot_root', target: root });
    if (ns.pid && !ctx.security?.privileged) {
      // Only over the container's own /proc: with the host's pid namespace it is the host's view anyway.
      for (const p of READONLY_PATHS) ops.push({ op: 'readonly', target: p });
      for (const p of MASKED_PATHS) ops.push({ op: 'mask', target: p });
    }
    // nodev on the root: a device node made inside (CAP_MKNOD is in docker's default set) cannot be
    // opened, so a container cannot reach the host's disks that way; only privileged ones can.
    const rootAttrs = (cfg.readonlyRootfs ?? ctx.sandbox ? MOUNT_ATTR.RDONLY : 0) | (allowDevices(ctx) ? 0 : MOUNT_ATTR.NODEV);
    if (rootAttrs) ops.push({ op: 'setattr', target: '/', set: rootAttrs });
  } else if (!ctx.sandbox) {
    ops.push({ op: 'chroot', target: root });
  }
  if (ns.net === true) ops.push({ op: 'lo_up' });
  if (ns.uts) ops.push({ op: 'sethostname', value: cfg.hostname ?? ctx.id.slice(0, 12) });
  ops.push({ op: 'chdir', target: cfg.cwd ?? '/' });
  ops.push(...processOps(user, cfg.user !== undefined || userns, userns, ctx.privileged, ctx.security));

  // newgidmap writes setgroups itself; a caller writing its own one-id map must deny setgroups first.
  const parts: ContainerPlanParts = { cloneFlags: cloneFlagsFor(ns), ops, denySetgroups: userns && !ctx.privileged && !maps?.gidMapper, user };
  if (maps?.uidMapper) parts.uidMapper = maps.uidMapper;
  if (maps?.gidMapper) parts.gidMapper = maps.gidMapper;
  if (maps) {
    parts.uidMap = maps.uidMap;
    parts.gidMap = maps.gidMap;
  }
  return parts;
}

/** Environment for the container's process: docker's defaults, then the caller's. */
export function buildEnv(base: Record<string, string>, given: ContainerConfig['env']): string[] {
  const env = new Map(Object.entries(base));
  if (Array.isArray(given)) {
    for (const kv of given) {
      const i = kv.indexOf('=');
      env.set(kv.slice(0, i), kv.slice(i + 1));
    }
  } else if (given) {
    for (const [k, v] of Object.entries(given)) env.set(k, v);
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}
