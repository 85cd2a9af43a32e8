/**
 * config.json → spawn plan: namespaces and id maps, the root and its mounts, devices, pivot_root,
 * masked and read-only paths, sysctls, hostname, and the process (process-ops.ts). Pure but for
 * stat() of bind sources: unit-tested without root. The one translation of an OCI config.
 */
import { isAbsolute, join } from 'node:path';
import { ValidationError } from '../errors.js';
import type { SetupOp, SpawnPlan } from '../native.js';
import { pathFromEnv } from '../runtime/container-env.js';
import { CLONE, MOUNT_ATTR, MS, formatIdMap, type CgroupView } from '../runtime/plan.js';
import type { OciConfig, OciProcess } from './config.js';
import { PROPAGATION, deviceOps, mountOps } from './mounts.js';
import { processSetupOps, seccompOp, seccompSetup } from './process-ops.js';
import { agentPlanFields } from './seccomp-agent.js';

export const NS_FLAGS: Record<string, number> = {
  pid: CLONE.NEWPID, network: CLONE.NEWNET, mount: CLONE.NEWNS, ipc: CLONE.NEWIPC, uts: CLONE.NEWUTS,
  user: CLONE.NEWUSER, cgroup: CLONE.NEWCGROUP, time: CLONE.NEWTIME,
};

/** Every namespace the container's processes are in other than the host's (what exec joins). */
export function namespaceFlags(cfg: OciConfig): number {
  return cfg.linux.namespaces.reduce((f, n) => f | NS_FLAGS[n.type]!, 0);
}

export interface OciPlanContext {
  id: string;
  bundle: string;
  /** Is the caller root in the initial user namespace (mknod allowed)? */
  privileged: boolean;
  cgroups: CgroupView[];
  cgroupPath?: string;
  cgroupTasks?: string[];
  /** The pty slave's host path, when the process has a terminal. */
  consolePath?: string;
  stdio: [number, number, number];
  /** An O_PATH fd of the exec fifo: the process waits on it for `start` (absent: no wait). */
  fifoFd?: number;
  /** fds of namespaces given by path (other than network), opened by the caller: type → fd. */
  nsFds?: Record<string, number>;
  /** --preserve-fds: the caller's fds 3 .. 3+N-1 are the process's too. */
  preserveFds?: number;
  /** Is a bind source a directory (stat() by default; plan-cache.ts records the answers). */
  isDirectory?: (p: string, field: string) => boolean;
}

/** personality(2)'s domains and flags (linux/personality.h) by the names runtime-spec uses. */
const PERSONALITY: Record<string, number> = {
  LINUX: 0x0000, LINUX32: 0x0008,
  UNAME26: 0x0020000, ADDR_NO_RANDOMIZE: 0x0040000, FDPIC_FUNCPTRS: 0x0080000, MMAP_PAGE_ZERO: 0x0100000, ADDR_COMPAT_LAYOUT: 0x0200000,
  READ_IMPLIES_EXEC: 0x0400000, ADDR_LIMIT_32BIT: 0x0800000, SHORT_INODE: 0x1000000, WHOLE_SECONDS: 0x2000000, STICKY_TIMEOUTS: 0x4000000, ADDR_LIMIT_3GB: 0x8000000,
};

export function personalityValue(domain: string, flags: string[]): number {
  let v = PERSONALITY[domain]!;
  for (const f of flags) {
    const bit = PERSONALITY[f];
    if (bit === undefined || f.startsWith('LINUX')) throw new ValidationError(`invalid config.json: linux.personality.flags: unknown flag ${f}`, 'linux.personality.flags');
    v |= bit;
  }
  return v;
}

const TIME_CLOCKS = ['monotonic', 'boottime'];

/**
 * A new time namespace with `linux.timeOffsets`: the process unshares one for its children, writes
 * the offsets while nothing is in it yet (the kernel freezes them when the first process enters),
 * and enters it itself at its execve. clone(CLONE_NEWTIME) would put the process in at once, too
 * early to set offsets; doing it in the spawning thread would need setns back, which the kernel
 * allows a single-threaded process only.
 */
export function timeNamespaceOps(cfg: OciConfig, fresh: boolean): SetupOp[] {
  const offsets = Object.entries(cfg.linux.timeOffsets ?? {});
  if (offsets.length && !fresh) throw new ValidationError('invalid config.json: linux.timeOffsets: needs a new time namespace (linux.namespaces: { "type": "time" } without a path)', 'linux.timeOffsets');
  if (!fresh) return [];
  const lines: string[] = [];
  for (const [clock, o] of offsets) {
    if (!TIME_CLOCKS.includes(clock)) throw new ValidationError(`invalid config.json: linux.timeOffsets: unknown clock ${clock} (monotonic or boottime)`, 'linux.timeOffsets');
    const ns = o.nanosecs ?? 0;
    if (!Number.isSafeInteger(o.secs ?? 0) || !Number.isInteger(ns) || ns < 0 || ns >= 1e9) throw new ValidationError(`invalid config.json: linux.timeOffsets.${clock}: secs must be a whole number and nanosecs within 0..999999999`, `linux.timeOffsets.${clock}`);
    lines.push(`${clock} ${o.secs ?? 0} ${ns}`);
  }
  const ops: SetupOp[] = [{ op: 'unshare', flags: CLONE.NEWTIME }];
  // /proc/self: the host's proc still (before the root changes), where self is this process.
  if (lines.length) ops.push({ op: 'write', target: '/proc/self/timens_offsets', data: `${lines.join('\n')}\n` });
  return ops;
}

export function rootfsOf(cfg: OciConfig, bundle: string): string {
  return isAbsolute(cfg.root.path) ? cfg.root.path : join(bundle, cfg.root.path);
}

export function requireProcess(cfg: OciConfig): OciProcess {
  if (!cfg.process) throw new ValidationError('invalid config.json: process: needed to create a container', 'process');
  return cfg.process;
}

export function ociSpawnPlan(cfg: OciConfig, ctx: OciPlanContext): SpawnPlan {
  const proc = requireProcess(cfg);
  const ns = new Map(cfg.linux.namespaces.map((n) => [n.type, n]));
  const fresh = (t: string) => ns.has(t as never) && ns.get(t as never)!.path === undefined;
  const userns = fresh('user');
  const root = rootfsOf(cfg, ctx.bundle);
  const seccomp = seccompSetup(cfg.linux.seccomp, proc.capabilities?.bounding);
  const ops: SetupOp[] = [];
  if (userns) ops.push({ op: 'setids', uid: 0, gid: 0, groups: [] });
  // Joined in the order that keeps the later joins allowed: the user namespace first.
  for (const t of ['user', 'ipc', 'uts', 'mount', 'cgroup', 'time']) {
    const fd = ctx.nsFds?.[t];
    if (fd !== undefined) ops.push({ op: 'setns', fd, flags: NS_FLAGS[t]! });
  }
  if (fresh('cgroup')) ops.push({ op: 'unshare', flags: CLONE.NEWCGROUP });
  ops.push(...timeNamespaceOps(cfg, fresh('time')));
  if (ns.has('mount')) {
    // runc's default: the container's mounts are slaves of the host's, so nothing goes back.
    ops.push({ op: 'mount', target: '/', flags: MS.REC | (1 << 19) });
    ops.push({ op: 'bind', source: root, target: root, recursive: true });
    const um = cfg.linux.uidMappings;
    const gm = cfg.linux.gidMappings;
    const idMaps = userns && um?.length && gm?.length ? { uidMap: formatIdMap(um), gidMap: formatIdMap(gm) } : undefined;
    const mctx = { root, bundle: ctx.bundle, cgroups: ctx.cgroups, userns, privileged: ctx.privileged, ...(idMaps ? { idMaps } : {}), ...(ctx.isDirectory ? { isDirectory: ctx.isDirectory } : {}) };
    cfg.mounts.forEach((m, i) => ops.push(...mountOps(m, i, mctx)));
    ops.push(...deviceOps(root, cfg.linux.devices ?? [], ctx.privileged && !userns, ctx.consolePath));
    ops.push({ op: 'pivot_root', target: root });
    const prop = cfg.linux.rootfsPropagation;
    if (prop !== undefined) ops.push({ op: 'mount', target: '/', flags: PROPAGATION[prop]! });
    for (const p of cfg.linux.readonlyPaths ?? []) ops.push({ op: 'readonly', target: p });
    for (const p of cfg.linux.maskedPaths ?? []) ops.push({ op: 'mask', target: p });
    if (cfg.root.readonly) ops.push({ op: 'setattr', target: '/', set: MOUNT_ATTR.RDONLY });
  } else {
    // The wait reopens the fifo through /proc/self/fd: in the host's mount namespace the new root
    // has no /proc of its own, so the wait comes before the chroot; so does a filter with a
    // listener, which must reach its agent before create returns.
    if (ctx.fifoFd !== undefined) {
      if (seccomp?.listenerPath !== undefined) ops.push(seccompOp(seccomp));
      ops.push({ op: 'await_start', fd: ctx.fifoFd });
    }
    ops.push({ op: 'chroot', target: root });
  }
  for (const [k, v] of Object.entries(cfg.linux.sysctl ?? {})) {
    if (k.includes('..') || k.includes('/')) throw new ValidationError(`invalid config.json: linux.sysctl: bad name ${k}`, 'linux.sysctl');
    ops.push({ op: 'write', target: `/proc/sys/${k.replaceAll('.', '/')}`, data: v });
  }
  if (cfg.hostname !== undefined) {
    if (!ns.has('uts')) throw new ValidationError('invalid config.json: hostname: needs a uts namespace', 'hostname');
    ops.push({ op: 'sethostname', value: cfg.hostname });
  }
  if (cfg.domainname !== undefined) ops.push({ op: 'write', target: '/proc/sys/kernel/domainname', data: cfg.domainname });
  const persona = cfg.linux.personality;
  // Before the seccomp filter, which may allow personality(2) only for some values.
  if (persona) ops.push({ op: 'personality', arg: personalityValue(persona.domain, persona.flags ?? []) });
  const early = seccomp?.listenerPath !== undefined && ctx.fifoFd !== undefined && !ns.has('mount');
  ops.push(...processSetupOps(proc, { userns, seccomp: early ? undefined : seccomp, beforeIds: ctx.fifoFd !== undefined && ns.has('mount') ? [{ op: 'await_start', fd: ctx.fifoFd }] : [] }));

  const env = proc.env ?? [];
  let cloneFlags = 0;
  // time: made by an op (timeNamespaceOps), not by clone.
  for (const t of ['pid', 'mount', 'ipc', 'uts', 'user', 'network']) if (fresh(t)) cloneFlags |= NS_FLAGS[t]!;
  const netPath = ns.get('network')?.path;
  const pidPath = ns.get('pid')?.path;
  const plan: SpawnPlan = {
    cloneFlags,
    ops,
    argv: proc.args,
    env,
    path: pathFromEnv(env),
    stdio: ctx.stdio,
    ctty: ctx.consolePath !== undefined,
    pdeathsig: false,
    denySetgroups: false,
    ...(ctx.preserveFds ? { preserveFds: ctx.preserveFds } : {}),
    ...(ctx.cgroupPath ? { cgroupPath: ctx.cgroupPath } : {}),
    ...(ctx.cgroupTasks?.length ? { cgroupTasks: ctx.cgroupTasks } : {}),
    ...(netPath !== undefined ? { netns: netPath } : {}),
    ...(pidPath !== undefined ? { pidns: pidPath } : {}),
    ...agentPlanFields(seccomp, { ociVersion: cfg.ociVersion, id: ctx.id, bundle: ctx.bundle, annotations: cfg.annotations, status: 'creating' }),
  };
  if (userns) {
    const um = cfg.linux.uidMappings;
    const gm = cfg.linux.gidMappings;
    if (!um?.length || !gm?.length) throw new ValidationError('invalid config.json: linux.uidMappings: a user namespace needs uid and gid mappings', 'linux.uidMappings');
    plan.uidMap = formatIdMap(um);
    plan.gidMap = formatIdMap(gm);
  }
  return plan;
}
