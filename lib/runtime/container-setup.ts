/**
 * What `Container.create` checks and prepares before anything runs, and what `start` builds: the
 * options that must agree, the directories the container's root is made on, its cgroup and the
 * spawn plan of its first process.
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Cgroup } from '../cgroup/cgroup.js';
import { DEFAULT_DEVICE_RULES } from '../cgroup/devices.js';
import { NotFoundError, ValidationError, isCode } from '../errors.js';
import type { SpawnPlan } from '../native.js';
import { fsError } from '../storage/errors.js';
import { pathFromEnv } from './container-env.js';
import type { HostFacts } from './host.js';
import type { ContainerConfig } from './options.js';
import { buildContainerPlan, type CgroupView, type ProcessSecurity } from './plan.js';
import { cgroupLayout, defaultRunRoot } from './run-root.js';

function checkDir(dir: string, field: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    if (!isCode(err, 'ENOENT', 'ENOTDIR')) throw fsError(err, field, dir);
    throw new NotFoundError(`${field} ${dir} does not exist`, { path: dir });
  }
  if (!isDir) throw new ValidationError(`invalid container options: ${field}: ${dir} is not a directory`, field);
}

/** Options that validate one by one but not together, and host paths that must exist. */
export function checkConfig(config: ContainerConfig): void {
  const roots = [config.rootfs, config.layers, config.image].filter((r) => r !== undefined).length;
  if (roots > 1) throw new ValidationError('invalid container options: give one of rootfs, layers and image', config.image ? 'image' : 'layers');
  if (!config.namespaces.mount && (config.mounts.length > 0 || config.readonlyRootfs)) {
    throw new ValidationError('invalid container options: mounts and readonlyRootfs need a private mount namespace', 'namespaces.mount');
  }
  if ((config.layers || config.image) && !config.namespaces.mount) {
    throw new ValidationError('invalid container options: layers and images need a private mount namespace', 'namespaces.mount');
  }
  if (config.rootfs !== undefined) checkDir(config.rootfs, 'rootfs');
  config.layers?.forEach((l, i) => checkDir(l, `layers.${i}`));
  config.mounts.forEach((m, i) => {
    if (m.type !== 'bind') return;
    try {
      statSync(m.source);
    } catch (err) {
      if (!isCode(err, 'ENOENT', 'ENOTDIR')) throw fsError(err, `mounts.${i}.source`, m.source);
      throw new NotFoundError(`mounts.${i}.source: ${m.source} does not exist`, { path: m.source });
    }
  });
}

/**
 * A host sandbox or an overlay needs an empty directory to build its root on, inside the
 * container's own mount namespace; an overlay also its upper and work dirs. Returns the run
 * directory and the root, or undefined when the container's root is its rootfs as given.
 */
export function makeRunDirs(config: ContainerConfig, id: string, layered: boolean): { runDir: string; root: string } | undefined {
  if (!config.namespaces.mount || (config.rootfs !== undefined && !layered)) return undefined;
  const runDir = join(config.runRoot ?? defaultRunRoot(), id);
  const root = join(runDir, 'root');
  mkdirSync(root, { recursive: true, mode: 0o700 });
  if (layered) {
    // An existing writable layer is kept: a container started again (the engine's start and
    // restart) finds what it wrote before.
    mkdirSync(join(runDir, 'upper'), { recursive: true, mode: 0o755 });
    mkdirSync(join(runDir, 'work'), { recursive: true, mode: 0o700 });
  }
  return { runDir, root };
}

/**
 * Every container gets its own cgroup when the caller may create one (root), so it can be limited,
 * measured, paused and killed as a whole. Without privileges, only when resources are asked for.
 */
export async function makeCgroup(config: ContainerConfig, id: string, privileged: boolean): Promise<Cgroup | undefined> {
  const { resources, cgroupParent } = config;
  if (!resources && !privileged) return undefined;
  try {
    const layout = await cgroupLayout();
    // docker's device list where the cgroup enforces it as an eBPF program (cgroup v2, root). With
    // v1's devices controller, nodev on the container's /dev and root keeps made nodes unusable.
    const devices = privileged && !config.privileged && layout.unified !== undefined && layout.controllers.devices?.version !== 1;
    return await Cgroup.create(id, {
      layout,
      ...(cgroupParent !== undefined ? { parent: cgroupParent } : {}),
      ...(resources ? { resources } : {}),
      ...(devices ? { devices: DEFAULT_DEVICE_RULES } : {}),
    });
  } catch (e) {
    if (resources && privileged) throw e;
    // Without privileges cgroups work only where they are delegated to us: elsewhere the container
    // runs in our cgroup, unlimited, and says so rather than failing.
    if (resources) {
      process.emitWarning(`container ${id.slice(0, 12)}: no cgroup (${(e as Error).message}); its resources are not applied`, { code: 'NSBOX_NO_CGROUP' });
    }
    return undefined;
  }
}

/** The container's own cgroup directories, for hierarchies bound (not mounted) in a user namespace. */
function viewsFor(views: CgroupView[], cg: Cgroup | undefined): CgroupView[] {
  if (!cg) return views;
  const paths = cg.paths;
  return views.map((v) => {
    const key = v.fstype === 'cgroup2' ? (paths.unified !== undefined ? 'unified' : Object.keys(paths)[0]) : v.data.split(',').find((c) => paths[c] !== undefined);
    const dir = key === undefined ? undefined : paths[key];
    return dir === undefined ? v : { ...v, hostDir: dir };
  });
}

export interface FirstProcess {
  id: string;
  root: string;
  env: string[];
  security: ProcessSecurity;
  cgroup: Cgroup | undefined;
  facts: HostFacts;
  /** Whether the root is a host sandbox (no rootfs, no layers). */
  sandbox: boolean;
  overlay?: { lower: string[]; upper: string; work: string; volatile?: boolean };
  stdio: [number, number, number];
  ctty: boolean;
  consolePath?: string;
}

/** The spawn plan of the container's first process. */
export function firstProcessPlan(cfg: ContainerConfig, p: FirstProcess): SpawnPlan {
  const { facts } = p;
  const placement = p.cgroup?.placement();
  const parts = buildContainerPlan(cfg, {
    id: p.id,
    root: p.root,
    sandbox: p.sandbox,
    sandboxEntries: facts.sandboxEntries,
    privileged: facts.privileged,
    ...(facts.subIds ? { subIds: facts.subIds } : {}),
    hostUid: facts.uid,
    hostGid: facts.gid,
    cgroups: viewsFor(facts.cgroups, p.cgroup),
    bindIsDir: cfg.mounts.map((m) => m.type !== 'bind' || statSync(m.source).isDirectory()),
    ...(p.consolePath ? { consolePath: p.consolePath } : {}),
    ...(p.overlay ? { overlay: p.overlay } : {}),
    security: p.security,
  });
  return {
    cloneFlags: parts.cloneFlags,
    ops: parts.ops,
    argv: cfg.command ?? [],
    env: p.env,
    path: pathFromEnv(p.env),
    stdio: p.stdio,
    ctty: p.ctty,
    denySetgroups: parts.denySetgroups,
    ...(parts.uidMap ? { uidMap: parts.uidMap, gidMap: parts.gidMap } : {}),
    ...(parts.uidMapper ? { uidMapper: parts.uidMapper } : {}),
    ...(parts.gidMapper ? { gidMapper: parts.gidMapper } : {}),
    ...(placement?.v2Path ? { cgroupPath: placement.v2Path } : {}),
    ...(placement?.tasksFiles.length ? { cgroupTasks: placement.tasksFiles } : {}),
    ...(typeof cfg.namespaces.net === 'string' ? { netns: cfg.namespaces.net } : {}),
    ...(cfg.netHelper ? { netHelper: cfg.netHelper.argv, netHelperPidFile: cfg.netHelper.pidFile } : {}),
  };
}
