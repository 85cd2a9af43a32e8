/**
 * A container's cgroup as the C++ side makes and removes it (cpp/cgroup-ops.h): the directories
 * to make, and what its removal kills and removes, compiled from a driver and the host's layout.
 * nsbox-runc's plan cache and calls file (lib/oci/) and the quick `run --rm`'s plan
 * (lib/engine/run-plan.ts) hold them; the policy (which directories, which parents are nsbox's to
 * climb) stays here, with the drivers.
 */
import { readdirSync } from 'node:fs';
import { posix as path } from 'node:path';
import type { CgroupLayout } from './detect.js';
import type { CgroupDriver } from './driver.js';
import { CgroupV1Driver } from './v1.js';
import { CgroupV2Driver } from './v2.js';

/** One directory to make, as the driver's create() makes it (mkdirLevels below the mountpoint, then a v1 cpuset filled or v2 controllers enabled). */
export interface CgroupDirEntry {
  mountpoint: string;
  mountRoot: string;
  dir: string;
  cpuset: boolean;
  v2: boolean;
}

/** The removal of a container's cgroup: the C++ CgroupSet (what the calls file's lines say, lib/oci/call-file.ts). */
export interface CgroupRemoval {
  /** Directories whose cgroup.procs list its processes. */
  procs: string[];
  /** Its freezer: freezer.state (v1), or cgroup.freeze and cgroup.events (freezerV2). */
  freezer?: string;
  freezerV2?: boolean;
  /** A cgroup2 directory with cgroup.kill. */
  kill?: string;
  /** Each: a directory removed with its sub-cgroups, then the nsbox-named parents climbed while empty and marked as nsbox's. */
  rmdirs: string[][];
}

/** The cgroup directories a driver's create() makes; undefined for a driver or layout the C++ side does not make. */
export function cgroupDirEntries(driver: CgroupDriver, layout: CgroupLayout): CgroupDirEntry[] | undefined {
  const v2 = (d: CgroupV2Driver) => ({ mountpoint: layout.unified!, mountRoot: layout.unifiedMountRoot ?? '/', dir: d.dir, cpuset: false, v2: true });
  if (driver instanceof CgroupV2Driver) return layout.unified ? [v2(driver)] : undefined;
  if (!(driver instanceof CgroupV1Driver)) return undefined;
  const out: CgroupDirEntry[] = driver.hierarchies.map((h) => ({ mountpoint: h.mountpoint, mountRoot: '/', dir: h.dir, cpuset: h.controllers.includes('cpuset'), v2: false }));
  if (driver.unified) {
    if (!layout.unified) return undefined;
    out.push(v2(driver.unified));
  }
  return out;
}

/** The mountpoint of the hierarchy that holds `key`'s directory ('unified' or a v1 controller). */
function mountpointOf(layout: CgroupLayout, key: string): string | undefined {
  return key === 'unified' ? layout.unified : layout.controllers[key]?.mountpoint;
}

/** Nsbox-named levels above `dir` that `made` says nsbox made, deepest first, below the mountpoint (rmdirNsboxParents' climb). */
function nsboxParents(mountpoint: string, dir: string, made: (dir: string) => boolean): string[] {
  const out: string[] = [];
  for (let cur = path.dirname(dir); cur.startsWith(`${mountpoint}/`) && path.basename(cur).includes('nsbox') && made(cur); cur = path.dirname(cur)) out.push(cur);
  return out;
}

/**
 * The removal of the cgroup at `paths` (a driver's paths). `made` says whether nsbox made a parent
 * level: the C++ side checks the mark again before it climbs one, so a removal compiled before the
 * level exists can list every nsbox-named level (`() => true`).
 */
export function cgroupRemoval(paths: Readonly<Record<string, string>>, layout: CgroupLayout, hasKillFile: boolean, made: (dir: string) => boolean): CgroupRemoval {
  const dirs = [...new Set(Object.values(paths))];
  const out: CgroupRemoval = { procs: dirs, rmdirs: [] };
  if (paths.freezer !== undefined) out.freezer = paths.freezer;
  else if (paths.unified !== undefined) Object.assign(out, { freezer: paths.unified, freezerV2: true });
  if (paths.unified !== undefined && hasKillFile) out.kill = paths.unified;
  for (const d of dirs) {
    const key = Object.keys(paths).find((k) => paths[k] === d)!;
    const mp = mountpointOf(layout, key);
    out.rmdirs.push([d, ...(mp ? nsboxParents(mp, d, made) : [])]);
  }
  return out;
}

/** Does the container's unified cgroup have cgroup.kill? */
export function unifiedKillFile(paths: Readonly<Record<string, string>>): boolean {
  try {
    // cgroup.kill is write-only: its presence in the listing says the kernel has it (5.14+).
    return paths.unified !== undefined && readdirSync(paths.unified).includes('cgroup.kill');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // no twin made: nothing to kill there
    return false;
  }
}
