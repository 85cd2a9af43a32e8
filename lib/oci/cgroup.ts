/**
 * The container's cgroup from `linux.cgroupsPath` and `linux.resources`, on the host's layout
 * (v1, hybrid, v2) through lib/cgroup's drivers. An absolute path is taken as is; a relative one
 * (and the default, `nsbox-runc/<id>`) beneath this process's own cgroup in each hierarchy.
 */
import { readFile } from 'node:fs/promises';
import { posix as path } from 'node:path';
import { driverFromPaths, makeDriver, parseResources, V1_CONTROLLERS, type CgroupDriver } from '../cgroup/index.js';
import { recordingWrites, writeValue, type RecordedWrite } from '../cgroup/cgroupfs.js';
import type { Resources } from '../cgroup/resources.js';
import { ignoreCode, NsboxError, ValidationError } from '../errors.js';
import { cgroupLayout } from '../runtime/run-root.js';
import { setDeviceProgram } from '../cgroup/devices.js';
import { cgroupWrites, deviceProgram, type ControllerVersion } from './cgroup-files.js';
import type { OciDevice, OciResources } from './config.js';

/** nsbox's v1 controllers and the network ones linux.resources.network needs, where mounted. */
const OCI_V1_CONTROLLERS = [...V1_CONTROLLERS, 'net_cls', 'net_prio'];

/** Which hierarchy drives each controller of this cgroup: a v1 one, or its cgroup2 directory. */
async function controllerVersions(cg: CgroupDriver): Promise<ControllerVersion> {
  const { unified, ...v1 } = cg.paths;
  const v2 = unified === undefined ? '' : ((await readFile(path.join(unified, 'cgroup.controllers'), 'utf8').catch(ignoreCode('ENOENT'))) ?? '');
  const have = new Set(v2.split(/\s+/).filter(Boolean));
  return (c) => (c === 'unified' ? (unified === undefined ? undefined : 2) : v1[c] !== undefined ? 1 : have.has(c) ? 2 : undefined);
}

/** Applies `resources` to the cgroup: the drivers' limits, then the files they do not write. */
export async function applyResources(cg: CgroupDriver, resources: OciResources | undefined, devices: OciDevice[] = []): Promise<void> {
  const res = ociResources(resources);
  if (res) await cg.set(parseResources(res, 'linux.resources'));
  const versionOf = await controllerVersions(cg);
  const writes = cgroupWrites(resources, versionOf, devices);
  const program = deviceProgram(resources, versionOf, devices);
  const { unified, ...v1 } = cg.paths;
  for (const w of writes) {
    const dir = v1[w.controller] ?? unified!;
    try {
      await writeValue(path.join(dir, w.file), w.value);
    } catch (e) {
      throw new NsboxError(`${w.field}: ${(e as Error).message}`, { cause: e, ...(e instanceof NsboxError && e.code ? { code: e.code } : {}) });
    }
  }
  if (program) {
    try {
      setDeviceProgram(unified!, program);
    } catch (e) {
      throw new NsboxError(`linux.resources.devices: ${(e as Error).message}`, { cause: e, ...(e instanceof NsboxError && e.code ? { code: e.code } : {}) });
    }
  }
}

/** The part of `linux.resources` nsbox's drivers apply, as their options. */
export function ociResources(r: OciResources | undefined): Resources | undefined {
  if (!r) return undefined;
  const out: Resources = {};
  const m = r.memory;
  if (m?.limit !== undefined && m.limit !== 0) out.memory = m.limit < 0 ? -1 : m.limit;
  if (m?.swap !== undefined && m.swap !== 0) out.memorySwap = m.swap < 0 ? -1 : m.swap;
  const c = r.cpu;
  // quota and period: written as given (cgroup-files.ts), not as a fraction of CPUs.
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

/**
 * Creates (or adopts, when it exists) the container's cgroup and applies its limits. With `writes`,
 * the limits' writes are recorded there (plan-cache.ts: the C++ create makes the directories as the
 * drivers' create() does and replays these; a setup step that is not a cgroupfs write belongs in
 * plan-cache.ts's cacheable() as a reason to go to Node).
 */
export async function createCgroup(cgroupsPath: string | undefined, id: string, resources: OciResources | undefined, devices: OciDevice[] = [], writes?: RecordedWrite[]): Promise<CgroupDriver> {
  const p = cgroupsPath ?? `nsbox-runc/${id}`;
  checkPath(p);
  const layout = await cgroupLayout();
  const driver = makeDriver(layout, 'auto', (own) => (p.startsWith('/') ? path.normalize(p) : path.join(own, p)), OCI_V1_CONTROLLERS);
  try {
    await driver.create();
  } catch (e) {
    if (!(e instanceof NsboxError && e.code === 'EEXIST')) throw e;
  }
  if (resources) {
    try {
      const apply = () => applyResources(driver, resources, devices);
      await (writes ? recordingWrites(apply, writes) : apply());
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
