/**
 * `create`: the init made from the bundle's config.json, in its cgroup and namespaces, set up and
 * blocked on `exec.fifo` until `start` (the await_start op). It is this process's direct child,
 * without a parent-death signal, so a subreaper above (containerd's shim) inherits it when this
 * process exits. Without a terminal it inherits fds 0-2; with one, the pty master goes to the
 * console socket before create returns.
 */
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { RecordedWrite } from '../cgroup/cgroupfs.js';
import { InvalidStateError, NotFoundError, ValidationError } from '../errors.js';
import { native } from '../native.js';
import { hostFacts } from '../runtime/host.js';
import { parseSeccompProfile } from '../runtime/seccomp/index.js';
import { CALLS, writeCallFile } from './call-file.js';
import { createCgroup } from './cgroup.js';
import { loadConfig } from './config.js';
import { explainIdmapFailure } from './mounts.js';
import { runHooks } from './hooks.js';
import { storePlanEntries, takePlanKeys } from './plan-cache.js';
import { ociSpawnPlan, requireProcess, rootfsOf, type OciPlanContext } from './spawn-plan.js';
import { FIFO, checkId, ensureRoot, procStat, saveState, stateDir, writeAtomic, type StateFile } from './state.js';
import { ociState } from './status.js';

export interface CreateOptions {
  root: string;
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  /** --preserve-fds N: this process's fds 3 .. 3+N-1 go to the init. */
  preserveFds?: number;
}

const O_PATH = 0o10000000;
const S_IFIFO = 0o010000;

function checkBundle(bundle: string): void {
  let dir = false;
  try {
    dir = statSync(bundle).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new NotFoundError(`bundle ${bundle} does not exist`, { path: bundle, cause: e });
  }
  if (!dir) throw new NotFoundError(`bundle ${bundle} is not a directory`, { path: bundle });
}

/** Creates the container; returns its state file and the init's pidfd (this process's child). */
export async function createContainer(o: CreateOptions): Promise<{ state: StateFile; pidfd: number }> {
  // Before anything opens a file: the keys nsbox-runc's C++ side gave (a cache miss), to store what is compiled here.
  const planKeys = takePlanKeys();
  checkId(o.id);
  checkBundle(o.bundle);
  const cfg = loadConfig(o.bundle);
  const proc = requireProcess(cfg);
  // An invalid profile (a notify rule without listenerPath, say) is refused before anything exists.
  if (cfg.linux.seccomp != null) parseSeccompProfile(cfg.linux.seccomp);
  const rootfs = rootfsOf(cfg, o.bundle);
  if (!existsSync(rootfs)) throw new NotFoundError(`rootfs (${rootfs}) does not exist`, { path: rootfs });
  // Checked before this process opens anything, which would take a free number in that range.
  for (let fd = 3; fd < 3 + (o.preserveFds ?? 0); fd++) {
    try {
      fstatSync(fd);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBADF') throw e;
      throw new ValidationError(`--preserve-fds ${o.preserveFds}: fd ${fd} is not open`, 'preserve-fds');
    }
  }
  if (proc.terminal && !o.consoleSocket) throw new NotFoundError('cannot allocate tty if runc will detach without setting console socket');
  ensureRoot(o.root);
  const dir = stateDir(o.root, o.id);
  try {
    mkdirSync(dir, { mode: 0o711 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new InvalidStateError(`container with id exists: ${o.id}`);
    throw e;
  }
  const opened: number[] = [];
  let cgroup: Awaited<ReturnType<typeof createCgroup>> | undefined;
  let pidfd: number | undefined;
  try {
    native.mknod(join(dir, FIFO), S_IFIFO | 0o622, 0, 0);
    // Writable by the init whatever its ids (mknod's mode went through the umask): in a user
    // namespace it is the mapped root, or another user, by the time it opens the fifo.
    chmodSync(join(dir, FIFO), 0o622);
    const fifoFd = openSync(join(dir, FIFO), O_PATH);
    opened.push(fifoFd);
    const nsFds: Record<string, number> = {};
    for (const n of cfg.linux.namespaces) {
      // network and pid: joined by the spawning thread for the clone (plan.netns, plan.pidns).
      if (n.path === undefined || n.type === 'network' || n.type === 'pid') continue;
      nsFds[n.type] = openSync(n.path, 'r');
      opened.push(nsFds[n.type]!);
    }
    const cgroupWrites: RecordedWrite[] = [];
    cgroup = await createCgroup(cfg.linux.cgroupsPath, o.id, cfg.linux.resources, cfg.linux.devices, cgroupWrites);
    const placement = cgroup.placement();
    let pty: { master: number; slave: number; path: string } | undefined;
    if (proc.terminal) {
      pty = native.openPty(proc.consoleSize ? { cols: proc.consoleSize.width || 80, rows: proc.consoleSize.height || 24 } : undefined);
      opened.push(pty.master, pty.slave);
    }
    const facts = hostFacts();
    const planContext: OciPlanContext = {
      id: o.id,
      bundle: o.bundle,
      privileged: facts.privileged,
      cgroups: facts.cgroups.map((v) => ({ ...v, hostDir: cgroup!.paths[v.fstype === 'cgroup2' ? 'unified' : v.data.split(',')[0]!] ?? v.hostDir })),
      ...(placement.v2Path ? { cgroupPath: placement.v2Path } : {}),
      cgroupTasks: placement.tasksFiles,
      // 0-2 dup'ed onto themselves: Node marks its stdio close-on-exec at start-up (libuv), the dup clears it.
      stdio: [0, 1, 2],
    };
    const plan = ociSpawnPlan(cfg, {
      ...planContext,
      stdio: pty ? [pty.slave, pty.slave, pty.slave] : [0, 1, 2],
      ...(pty ? { consolePath: pty.path } : {}),
      fifoFd,
      nsFds,
      ...(o.preserveFds ? { preserveFds: o.preserveFds } : {}),
    });
    const spawned = await native.spawn(plan).catch((e: unknown) => {
      throw explainIdmapFailure(e, cfg.mounts, rootfs);
    });
    pidfd = spawned.pidfd;
    if (pty) native.sendFd(o.consoleSocket!, pty.master, pty.path);
    const st = procStat(spawned.pid);
    const state: StateFile = {
      id: o.id,
      pid: spawned.pid,
      start: st?.start ?? 0,
      bundle: o.bundle,
      rootfs,
      created: new Date().toISOString(),
      owner: userInfo().username,
      ...(cfg.annotations ? { annotations: cfg.annotations } : {}),
      cgroupPaths: { ...cgroup.paths },
      config: cfg,
    };
    saveState(o.root, state);
    await writeCallFile(join(dir, CALLS), state, cgroup);
    const hookState = ociState(state, 'created');
    await runHooks(cfg, 'prestart', hookState);
    await runHooks(cfg, 'createRuntime', hookState);
    await runHooks(cfg, 'createContainer', hookState);
    if (o.pidFile) writeAtomic(o.pidFile, String(spawned.pid));
    // Uncacheable: a terminal, and a seccomp agent (the C++ create path does not hand listeners over).
    if (planKeys && !proc.terminal && plan.seccompListener === undefined) await storePlanEntries(planKeys, { root: o.root, cfg, state, cgroup, cgroupWrites, planContext });
    return { state, pidfd };
  } catch (e) {
    if (pidfd !== undefined) native.sendSignal(pidfd, 9);
    await cgroup?.kill().catch((k: unknown) => process.emitWarning(`nsbox-runc: killing what ${o.id} left: ${(k as Error).message}`));
    await cgroup?.remove().catch((r: unknown) => process.emitWarning(`nsbox-runc: cgroup of ${o.id} left: ${(r as Error).message}`));
    rmSync(dir, { recursive: true, force: true });
    throw e;
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}
