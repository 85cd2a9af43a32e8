import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ignoreCode } from '../errors.js';

export type CgroupMode = 'v2' | 'v1' | 'hybrid';

/** Where one controller lives, and where the calling process sits in that hierarchy. */
export interface ControllerInfo {
  version: 1 | 2;
  /** Where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory. */
  mountpoint: string;
  /** The cgroup path the mount shows (mountinfo's root field; '/' unless inside a container). */
  mountRoot: string;
  /** The calling process's cgroup in this hierarchy, as /proc/self/cgroup says (e.g. /user.slice). */
  ownPath: string;
}

export interface CgroupLayout {
  mode: CgroupMode;
  /** Mountpoint of the cgroup2 (unified) hierarchy, if mounted. */
  unified?: string;
  /** The unified hierarchy's mount root and our own cgroup in it. */
  unifiedMountRoot?: string;
  unifiedOwnPath?: string;
  controllers: Record<string, ControllerInfo>;
}

export interface DetectOptions {
  /** Where proc is mounted; unit tests point it at a directory with self/mountinfo and self/cgroup. */
  procRoot?: string;
}

export interface MountEntry {
  mountpoint: string;
  root: string;
  fstype: string;
  superOptions: string[];
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses the cgroup and cgroup2 mounts out of a mountinfo text (proc(5)). */
export function parseCgroupMounts(mountinfo: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    if (pre.length < 5) continue;
    out.push({ root: unescape(pre[3]!), mountpoint: unescape(pre[4]!), fstype, superOptions: superOpts.split(',') });
  }
  return out;
}

/** Parses /proc/<pid>/cgroup: hierarchy key ('' for cgroup2, else e.g. 'cpu,cpuacct') → path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const path = m[3]!.replace(/ \(deleted\)$/, '');
    if (m[2] === '') out.set('', path);
    else for (const c of m[2]!.split(',')) out.set(c, path);
  }
  return out;
}

// Options a cgroup v1 mount carries that are not controller names.
export const NOT_CONTROLLERS = new Set(['rw', 'ro', 'none', 'noprefix', 'xattr', 'clone_children', 'cpuset_v2_mode', 'favordynmods', 'nofavordynmods', 'nsdelegate', 'memory_recursiveprot']);

/** Builds the layout from mountinfo and /proc/self/cgroup texts; `v2Controllers` is the unified root's cgroup.controllers. */
export function layoutFrom(mountinfo: string, procCgroup: string, v2Controllers: string[]): CgroupLayout {
  const mounts = parseCgroupMounts(mountinfo);
  const own = parseProcCgroup(procCgroup);
  const controllers: Record<string, ControllerInfo> = {};
  let unified: MountEntry | undefined;
  let v1 = false;
  for (const m of mounts) {
    if (m.fstype === 'cgroup2') {
      unified ??= m;
      continue;
    }
    for (const opt of m.superOptions) {
      if (NOT_CONTROLLERS.has(opt) || opt.startsWith('name=') || opt.startsWith('release_agent=')) continue;
      if (controllers[opt]) continue; // a second (bind) mount of the same hierarchy
      v1 = true;
      controllers[opt] = { version: 1, mountpoint: m.mountpoint, mountRoot: m.root, ownPath: own.get(opt) ?? '/' };
    }
  }
  if (unified) {
    for (const c of v2Controllers) {
      if (!controllers[c]) controllers[c] = { version: 2, mountpoint: unified.mountpoint, mountRoot: unified.root, ownPath: own.get('') ?? '/' };
    }
  }
  const mode: CgroupMode = v1 ? (unified ? 'hybrid' : 'v1') : 'v2';
  if (!v1 && !unified) throw new Error('no cgroup or cgroup2 file system is mounted (mountinfo lists none)');
  const layout: CgroupLayout = { mode, controllers };
  if (unified) {
    layout.unified = unified.mountpoint;
    layout.unifiedMountRoot = unified.root;
    layout.unifiedOwnPath = own.get('') ?? '/';
  }
  return layout;
}

/**
 * Finds the cgroup hierarchies of this host: cgroup2 only ('v2'), cgroup v1 only ('v1'), or v1
 * controllers next to a cgroup2 mount ('hybrid'), and where this process sits in each.
 */
export async function detectCgroups(options: DetectOptions = {}): Promise<CgroupLayout> {
  const proc = options.procRoot ?? '/proc';
  const [mountinfo, procCgroup] = await Promise.all([
    readFile(path.join(proc, 'self/mountinfo'), 'utf8'),
    // ENOENT: a kernel without cgroups (or a test's proc root without the file): no memberships
    readFile(path.join(proc, 'self/cgroup'), 'utf8').catch(ignoreCode('ENOENT')),
  ]);
  const unified = parseCgroupMounts(mountinfo).find((m) => m.fstype === 'cgroup2');
  let v2Controllers: string[] = [];
  if (unified) {
    // ENOENT: the cgroup2 mount is not visible from here (another mount namespace's): no controllers known
    const text = await readFile(path.join(unified.mountpoint, 'cgroup.controllers'), 'utf8').catch(ignoreCode('ENOENT'));
    v2Controllers = (text ?? '').split(/\s+/).filter(Boolean);
  }
  return layoutFrom(mountinfo, procCgroup ?? '', v2Controllers);
}

/** The directory of cgroup `cgroupPath` in a hierarchy mounted at `mountpoint` showing `mountRoot`. */
export function hierarchyDir(mountpoint: string, mountRoot: string, cgroupPath: string): string {
  const rel = path.posix.relative(mountRoot, cgroupPath);
  if (rel.startsWith('..')) throw new Error(`cgroup ${cgroupPath} is outside the mounted part (${mountRoot}) of ${mountpoint}`);
  return path.posix.join(mountpoint, rel);
}
