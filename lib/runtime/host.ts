/**
 * Facts about the host that container plans depend on, read once per process: privilege,
 * the cgroup hierarchies to show inside containers, the entries a host sandbox binds.
 */
import { readFileSync, readdirSync, readlinkSync, lstatSync } from 'node:fs';
import { posix as path } from 'node:path';
import { parseCgroupMounts, parseProcCgroup } from '../cgroup/detect.js';
import type { CgroupView } from './plan.js';

/** Host top-level entries a sandbox shows: the system, read-only. Everything else is private. */
const SANDBOX_DIRS = ['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'etc', 'opt'];
const NOT_CONTROLLERS = new Set(['rw', 'ro', 'none', 'noprefix', 'xattr', 'clone_children', 'cpuset_v2_mode', 'nsdelegate', 'memory_recursiveprot', 'favordynmods']);

export interface HostFacts {
  privileged: boolean;
  uid: number;
  gid: number;
  cgroups: CgroupView[];
  sandboxEntries: Array<{ name: string; symlink?: string }>;
}

let cached: HostFacts | undefined;

/** Root in the initial user namespace: may mknod and write any id map. */
function isPrivileged(): boolean {
  if (process.geteuid?.() !== 0) return false;
  try {
    return /^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false;
  }
}

/** The hierarchies mounted under /sys/fs/cgroup, as they should appear in a container. */
export function cgroupViews(mountinfo: string, procCgroup: string): CgroupView[] {
  const own = parseProcCgroup(procCgroup);
  const views: CgroupView[] = [];
  const seen = new Set<string>();
  for (const m of parseCgroupMounts(mountinfo)) {
    if (m.mountpoint !== '/sys/fs/cgroup' && !m.mountpoint.startsWith('/sys/fs/cgroup/')) continue;
    if (seen.has(m.mountpoint)) continue;
    seen.add(m.mountpoint);
    const name = path.relative('/sys/fs/cgroup', m.mountpoint);
    const opts = m.superOptions.filter((o) => !NOT_CONTROLLERS.has(o) && !o.startsWith('release_agent='));
    const key = m.fstype === 'cgroup2' ? '' : (opts.find((o) => !o.startsWith('name=')) ?? opts[0] ?? '');
    const ownPath = own.get(key) ?? '/';
    const rel = path.relative(m.root, ownPath);
    views.push({
      name,
      fstype: m.fstype === 'cgroup2' ? 'cgroup2' : 'cgroup',
      data: m.fstype === 'cgroup2' ? '' : opts.join(','),
      hostDir: rel.startsWith('..') ? m.mountpoint : path.join(m.mountpoint, rel),
    });
  }
  return views;
}

function sandboxEntries(): HostFacts['sandboxEntries'] {
  const present = new Set(readdirSync('/'));
  const out: HostFacts['sandboxEntries'] = [];
  for (const name of SANDBOX_DIRS) {
    if (!present.has(name)) continue;
    const st = lstatSync(`/${name}`);
    if (st.isSymbolicLink()) out.push({ name, symlink: readlinkSync(`/${name}`) });
    else if (st.isDirectory()) out.push({ name });
  }
  return out;
}

export function hostFacts(): HostFacts {
  if (cached) return cached;
  let mountinfo = '';
  let procCgroup = '';
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    procCgroup = readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    // no /proc: no cgroup views
  }
  cached = {
    privileged: isPrivileged(),
    uid: process.geteuid?.() ?? 0,
    gid: process.getegid?.() ?? 0,
    cgroups: cgroupViews(mountinfo, procCgroup),
    sandboxEntries: sandboxEntries(),
  };
  return cached;
}
