/**
 * The container's cgroup from `linux.cgroupsPath` and `linux.resources`, on the host's layout
 * (v1, hybrid, v2) through lib/cgroup's drivers. An absolute path is taken as is; a relative one
 * (and the default, `nsbox-runc/<id>`) beneath this process's own cgroup in each hierarchy.
 */
import { posix as path } from 'node:path';
import { driverFromPaths, makeDriver, parseResources, type CgroupDriver } from '../cgroup/index.js';
import type { Resources } from '../cgroup/resources.js';
import { NsboxError, ValidationError } from '../errors.js';
import { cgroupLayout } from '../runtime/run-root.js';
import type { OciResources } from './config.js';

/** The part of `linux.resources` nsbox's drivers apply, as their options. */
export function ociResources(r: OciResources | undefined): Resources | undefined {
  if (!r) return undefined;
  const out: Resources = {};
  const m = r.memory;
  if (m?.limit !== undefined && m.limit !== 0) out.memory = m.limit < 0 ? -1 : m.limit;
  if (m?.swap !== undefined && m.swap !== 0) out.memorySwap = m.swap < 0 ? -1 : m.swap;
  const c = r.cpu;
  if (c?.quota !== undefined) out.cpus = c.quota > 0 ? c.quota / (c.period && c.period > 0 ? c.period : 100_000) : 0;
  if (c?.shares) out.cpuShares = Math.min(262144, Math.max(2, c.shares));
  if (c?.cpus || c?.mems) out.cpuset = { ...(c.cpus ? { cpus: c.cpus } : {}), ...(c.mems ? { mems: c.mems } : {}) };
  if (r.pids) out.pids = r.pids.limit > 0 ? r.pids.limit : -1;
  if (r.blockIO?.weight) out.blkio = { weight: r.blockIO.weight };
  if (r.hugepageLimits?.length) out.hugetlb = Object.fromEntries(r.hugepageLimits.map((h) => [h.pageSize, h.limit >= 2 ** 53 ? -1 : h.limit]));
  return Object.keys(out).length ? out : undefined;
}

function checkPath(p: string): void {
  if (p.split('/').some((s) => s === '..' || s === '.')) throw new ValidationError(`invalid config.json: linux.cgroupsPath: ${p} has '.' or '..'`, 'linux.cgroupsPath');
  if (p.includes(':')) throw new ValidationError(`invalid config.json: linux.cgroupsPath: ${p} is a systemd slice path; nsbox-runc manages cgroupfs only (no --systemd-cgroup)`, 'linux.cgroupsPath');
}

/** Creates (or adopts, when it exists) the container's cgroup and applies its limits. */
export async function createCgroup(cgroupsPath: string | undefined, id: string, resources: OciResources | undefined): Promise<CgroupDriver> {
  const p = cgroupsPath ?? `nsbox-runc/${id}`;
  checkPath(p);
  const layout = await cgroupLayout();
  const driver = makeDriver(layout, 'auto', (own) => (p.startsWith('/') ? path.normalize(p) : path.join(own, p)));
  try {
    await driver.create();
  } catch (e) {
    if (!(e instanceof NsboxError && e.code === 'EEXIST')) throw e;
  }
  const res = ociResources(resources);
  if (res) {
    try {
      await driver.set(parseResources(res, 'linux.resources'));
    } catch (e) {
      await driver.remove().catch((cleanup: unknown) => process.emitWarning(`nsbox-runc: cgroup of ${id} left after its limits were refused: ${(cleanup as Error).message}`));
      throw e;
    }
  }
  return driver;
}

export async function openCgroup(paths: Record<string, string>): Promise<CgroupDriver | undefined> {
  if (Object.keys(paths).length === 0) return undefined;
  return driverFromPaths(await cgroupLayout(), paths);
}
