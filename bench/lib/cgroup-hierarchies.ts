// Where this process sits in every mounted cgroup hierarchy, so the peers' cgroups can be placed
// beneath our own cgroup and checked and removed after each run.
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join, posix } from 'node:path';

export interface CgroupHierarchy {
  /** 'cgroup2', or the v1 hierarchy's controllers joined by ',' ('memory', 'name=systemd'). */
  name: string;
  version: 1 | 2;
  mountPoint: string;
  /** Our own cgroup in this hierarchy, as an absolute path on the host. */
  ownDir: string;
  /** True when our own cgroup is not the hierarchy's root. */
  nested: boolean;
}

export interface CgroupLayout {
  /** /sys/fs/cgroup is a tmpfs holding v1 hierarchies (with or without a cgroup2 beside them). */
  legacyRoot: boolean;
  hierarchies: CgroupHierarchy[];
}

interface MountInfo { root: string; mountPoint: string; fsType: string; superOptions: string[] }

function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const fields = left.split(' ');
    const [fsType = '', , superOptions = ''] = right.split(' ');
    mounts.push({
      root: fields[3] ?? '/',
      mountPoint: fields[4] ?? '',
      fsType,
      superOptions: superOptions.split(','),
    });
  }
  return mounts;
}

/** Reads /proc/self/mountinfo and /proc/self/cgroup. */
export function readCgroupLayout(): CgroupLayout {
  const mounts = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  const memberships = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [, , controllers = '', path = '/'] = line.match(/^(\d+):([^:]*):(.*)$/) ?? [];
      return { controllers: controllers ? controllers.split(',') : [], path };
    });

  const hierarchies: CgroupHierarchy[] = [];
  for (const mount of mounts) {
    if (mount.fsType !== 'cgroup' && mount.fsType !== 'cgroup2') continue;
    const version = mount.fsType === 'cgroup2' ? 2 : 1;
    const member = memberships.find((m) =>
      version === 2
        ? m.controllers.length === 0
        : m.controllers.length > 0 && m.controllers.every((c) => mount.superOptions.includes(c)),
    );
    if (!member) continue;
    // Paths in /proc/self/cgroup are relative to the hierarchy's root; a mount may show a subtree.
    const relative = posix.relative(mount.root, member.path);
    if (relative.startsWith('..')) continue;
    hierarchies.push({
      name: version === 2 ? 'cgroup2' : member.controllers.join(','),
      version,
      mountPoint: mount.mountPoint,
      ownDir: join(mount.mountPoint, relative),
      nested: relative !== '',
    });
  }
  const root = mounts.filter((m) => m.mountPoint === '/sys/fs/cgroup').at(-1);
  return { legacyRoot: root?.fsType === 'tmpfs', hierarchies };
}

/** The directories a cgroup `name` beneath our own cgroup has, in each hierarchy, that exist now. */
export function findChildCgroup(layout: CgroupLayout, name: string): string[] {
  return layout.hierarchies.map((h) => join(h.ownDir, name)).filter((dir) => existsSync(dir));
}

function removeTree(dir: string, kill: (pid: number) => void): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeTree(join(dir, entry.name), kill);
  }
  for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
    kill(Number(pid));
  }
  // A killed process leaves its cgroup a moment after it dies.
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || attempt >= 50) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

/**
 * Removes what is left of the cgroup `name` beneath our own cgroup, deepest first, killing any
 * process still in it (only a container the benchmark itself started can be there). Returns the
 * directories that had been left behind.
 */
export function removeChildCgroup(layout: CgroupLayout, name: string): string[] {
  const left = findChildCgroup(layout, name);
  for (const dir of left) removeTree(dir, (pid) => process.kill(pid, 'SIGKILL'));
  return left;
}
