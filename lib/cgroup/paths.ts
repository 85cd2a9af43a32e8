import path from 'node:path';
import { NotFoundError, ValidationError } from '../errors.js';
import { hierarchyDir, type CgroupLayout } from './detect.js';
import type { CgroupDriver } from './driver.js';
import { CgroupV1Driver, V1_CONTROLLERS, type V1Hierarchy } from './v1.js';
import { CgroupV2Driver } from './v2.js';

/** The parent nsbox uses when neither the option nor NSBOX_CGROUP_PARENT names one. */
export const DEFAULT_CGROUP_PARENT = 'nsbox';

export type DriverKind = 'auto' | 'v1' | 'v2';

export function cgroupParent(parent?: string, env: NodeJS.ProcessEnv = process.env): string {
  const p = parent ?? (env.NSBOX_CGROUP_PARENT || DEFAULT_CGROUP_PARENT);
  checkPath(p, 'parent');
  return p;
}

function checkPath(p: string, field: string): void {
  const body = p.startsWith('/') ? p.slice(1) : p;
  const ok = body === '' ? field === 'parent' && p === '/' : body.split('/').every((s) => s !== '' && s !== '.' && s !== '..' && !/[\0\n]/.test(s));
  if (!ok) throw new ValidationError(`invalid cgroup ${field} '${p}': expected names separated by '/', without '.', '..' or empty parts`, field);
}

/**
 * The cgroup path for `name` in a hierarchy where this process sits at `ownPath`: an absolute name is
 * taken as is; otherwise it goes under `parent`, and a relative parent goes under `ownPath`.
 * For a new cgroup (`create`), the part nsbox adds must say 'nsbox' so that prune() can find it later;
 * if neither parent nor name does, the last part becomes 'nsbox-<name>'.
 */
export function cgroupPathFor(ownPath: string, parent: string, name: string, create: boolean): string {
  checkPath(name, 'name');
  if (name.startsWith('/')) return create ? nsboxNamed(name, name) : path.posix.normalize(name);
  const base = parent.startsWith('/') ? parent : path.posix.join(ownPath, parent);
  const full = path.posix.join(base, name);
  return create ? nsboxNamed(full, parent.startsWith('/') ? full : path.posix.join(parent, name)) : full;
}

function nsboxNamed(full: string, added: string): string {
  if (added.includes('nsbox')) return full;
  return path.posix.join(path.posix.dirname(full), `nsbox-${path.posix.basename(full)}`);
}

/**
 * Builds the driver for the cgroup whose path in a hierarchy is `pathFor(ownPathInThatHierarchy)`.
 * `controllers`: the v1 controllers whose hierarchies it spans, where mounted (nsbox-runc adds
 * net_cls and net_prio for linux.resources.network).
 */
export function makeDriver(layout: CgroupLayout, kind: DriverKind, pathFor: (ownPath: string) => string, controllers: readonly string[] = V1_CONTROLLERS): CgroupDriver {
  const useV2 = kind === 'v2' || (kind === 'auto' && layout.mode === 'v2');
  const unified = layout.unified
    ? new CgroupV2Driver({ mountpoint: layout.unified, mountRoot: layout.unifiedMountRoot ?? '/', cgroupPath: pathFor(layout.unifiedOwnPath ?? '/') })
    : undefined;
  if (useV2) {
    if (!unified) throw new NotFoundError('no cgroup2 hierarchy is mounted: the v2 driver cannot be used');
    return unified;
  }
  const byMount = new Map<string, V1Hierarchy>();
  for (const c of controllers) {
    const info = layout.controllers[c];
    if (!info || info.version !== 1) continue;
    const h = byMount.get(info.mountpoint);
    if (h) h.controllers.push(c);
    else byMount.set(info.mountpoint, { controllers: [c], mountpoint: info.mountpoint, dir: hierarchyDir(info.mountpoint, info.mountRoot, pathFor(info.ownPath)) });
  }
  if (byMount.size === 0) throw new NotFoundError('no cgroup v1 hierarchy is mounted: the v1 driver cannot be used');
  return new CgroupV1Driver({ hierarchies: [...byMount.values()], ...(unified ? { unified } : {}) });
}

/** Rebuilds a driver from the directories a cgroup's `paths` reported (controller or 'unified' → dir). */
export function driverFromPaths(layout: CgroupLayout, paths: Record<string, string>, kind: DriverKind = 'auto'): CgroupDriver {
  const unifiedDir = paths.unified;
  let unified: CgroupV2Driver | undefined;
  if (unifiedDir !== undefined) {
    if (!layout.unified) throw new NotFoundError(`no cgroup2 hierarchy is mounted for ${unifiedDir}`);
    const rel = path.posix.relative(layout.unified, unifiedDir);
    if (rel.startsWith('..')) throw new ValidationError(`${unifiedDir} is not in the cgroup2 hierarchy at ${layout.unified}`, 'paths.unified');
    unified = new CgroupV2Driver({ mountpoint: layout.unified, mountRoot: layout.unifiedMountRoot ?? '/', cgroupPath: path.posix.join(layout.unifiedMountRoot ?? '/', rel) });
  }
  const v1 = Object.entries(paths).filter(([k]) => k !== 'unified');
  if (kind === 'v2' || (kind === 'auto' && v1.length === 0)) {
    if (!unified) throw new ValidationError('paths has no unified directory for the v2 driver', 'paths');
    return unified;
  }
  const byDir = new Map<string, V1Hierarchy>();
  for (const [c, dir] of v1) {
    const info = layout.controllers[c];
    if (!info || info.version !== 1) throw new NotFoundError(`controller ${c} is not mounted as cgroup v1`);
    const h = byDir.get(dir);
    if (h) h.controllers.push(c);
    else byDir.set(dir, { controllers: [c], mountpoint: info.mountpoint, dir });
  }
  return new CgroupV1Driver({ hierarchies: [...byDir.values()], ...(unified ? { unified } : {}) });
}
