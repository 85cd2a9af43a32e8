/**
 * Facts about the host that container plans depend on, read once per process: privilege,
 * the cgroup hierarchies to show inside containers, the entries a host sandbox binds.
 */
import { readFileSync, readdirSync, readlinkSync, lstatSync } from 'node:fs';
import { posix as path } from 'node:path';
import { NOT_CONTROLLERS, parseCgroupMounts, parseProcCgroup } from '../cgroup/detect.js';
import { isCode } from '../errors.js';
import { isPrivileged } from '../privilege.js';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { CgroupView, SubIds } from './plan.js';

/** Host top-level entries a sandbox shows: the system, read-only. Everything else is private. */
const SANDBOX_DIRS = ['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'etc', 'opt'];

export interface HostFacts {
  privileged: boolean;
  uid: number;
  gid: number;
  cgroups: CgroupView[];
  sandboxEntries: Array<{ name: string; symlink?: string }>;
  /** For an unprivileged caller: its subordinate ids and the uidmap helpers, if it has both. */
  subIds?: SubIds;
}

let cached: HostFacts | undefined;

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

/** The first range for `user` (by name or uid) in an /etc/subuid-style file. */
export function subRange(text: string, name: string | undefined, id: number): { start: number; count: number } | undefined {
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === name || who === String(id)) && Number(count) > 0) return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

function subIds(uid: number, gid: number): SubIds | undefined {
  const helper = (n: string) => ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => `${d}/${n}`).find((p) => existsSync(p));
  const newuidmap = helper('newuidmap');
  const newgidmap = helper('newgidmap');
  if (!newuidmap || !newgidmap) return undefined;
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch (err) {
    // ERR_SYSTEM_ERROR from uv_os_get_passwd: no passwd entry for this uid; /etc/sub?id match it by number alone
    if (!isCode(err, 'ERR_SYSTEM_ERROR')) throw err;
    name = undefined;
  }
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (err) {
      // ENOENT: no subordinate ids configured on this host
      if (!isCode(err, 'ENOENT')) throw err;
      return '';
    }
  };
  const u = subRange(read('/etc/subuid'), name, uid);
  const g = subRange(read('/etc/subgid'), name, gid);
  return u && g ? { uid: u, gid: g, newuidmap, newgidmap } : undefined;
}

export function hostFacts(): HostFacts {
  if (cached) return cached;
  let mountinfo = '';
  let procCgroup = '';
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    procCgroup = readFileSync('/proc/self/cgroup', 'utf8');
  } catch (err) {
    // ENOENT: no /proc, so no cgroup views
    if (!isCode(err, 'ENOENT')) throw err;
  }
  const privileged = isPrivileged();
  const sub = privileged ? undefined : subIds(process.geteuid?.() ?? 0, process.getegid?.() ?? 0);
  cached = {
    ...(sub ? { subIds: sub } : {}),
    privileged,
    uid: process.geteuid?.() ?? 0,
    gid: process.getegid?.() ?? 0,
    cgroups: cgroupViews(mountinfo, procCgroup),
    sandboxEntries: sandboxEntries(),
  };
  return cached;
}
