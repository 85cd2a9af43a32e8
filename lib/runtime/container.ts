/**
 * `Container`: a process tree in fresh namespaces on a prepared root, owned by this Node process.
 * create() validates and prepares, start() spawns (off the event loop), wait()/kill()/stop() follow
 * the init process through its pidfd, exec() enters the namespaces, remove() leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { InvalidStateError, NotFoundError, ValidationError } from '../errors.js';
import { native, type SpawnPlan } from '../native.js';
import { hostFacts } from './host.js';
import { resolveImage, type ResolvedImage } from './image-source.js';
import { envObject, withImageDefaults } from './image-config.js';
import { securityOf } from './security.js';
import { spawnSlot } from './spawn-slot.js';
import { copyLayers, overlayAvailable } from './rootfs-copy.js';
import { Cgroup } from '../cgroup/cgroup.js';
import { detectCgroups, type CgroupLayout } from '../cgroup/detect.js';
import type { CgroupStats } from '../cgroup/driver.js';
import type { CgroupView } from './plan.js';
import {
  ContainerOptionsSchema, ExecOptionsSchema, validate,
  type ContainerConfig, type ContainerOptions, type ExecOptions,
} from './options.js';
import { buildContainerPlan, buildEnv, namespaceFlags, parseUser, processOps, CLONE, type ProcessSecurity } from './plan.js';
import { ContainerProcess, type ExitStatus } from './process.js';
import { closeQuietly, discardStdio, prepareStdio, type PreparedStdio } from './stdio.js';
import { signalNumber, type SignalName } from './signals.js';
import { writeCgroupPaths } from './bundle.js';
import { CONSOLE_PLACEHOLDER, startDetached, stopDetached, type ShimSettings } from './shim.js';

export type ContainerState = 'created' | 'running' | 'exited' | 'removed';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function defaultRunRoot(): string {
  if (process.env.NSBOX_RUN_ROOT) return process.env.NSBOX_RUN_ROOT;
  if (process.geteuid?.() === 0) return '/run/nsbox';
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'nsbox');
  return join(tmpdir(), `nsbox-${process.geteuid?.() ?? 0}`);
}

let layout: Promise<CgroupLayout> | undefined;
/** The host's cgroup layout, detected once per process. */
function cgroupLayout(): Promise<CgroupLayout> {
  layout ??= detectCgroups();
  layout.catch(() => {
    layout = undefined;
  });
  return layout;
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

function checkDir(dir: string, field: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new NotFoundError(`${field} ${dir} does not exist`, { path: dir });
  }
  if (!isDir) throw new ValidationError(`invalid container options: ${field}: ${dir} is not a directory`, field);
}

function rmdirQuietly(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function pathFromEnv(env: string[]): string {
  const p = env.findLast((kv) => kv.startsWith('PATH='));
  return p ? p.slice(5) : DEFAULT_PATH;
}

export class Container implements AsyncDisposable {
  readonly id: string;
  readonly config: ContainerConfig;
  #state: ContainerState = 'created';
  #init: ContainerProcess | undefined;
  #execs = new Set<ContainerProcess>();
  #runDir: string | undefined;
  #cgroup: Cgroup | undefined;
  #exit: Promise<ExitStatus> | undefined;
  #root: string;
  #env: string[];
  #layers: string[] | undefined;
  #releaseImage: (() => void) | undefined;
  #security: ProcessSecurity;
  #bundle: string | undefined;
  /** For a container joined by `join()`: a pidfd of its init, which runs elsewhere. */
  #joined: number | undefined;
  /** The image the container was made from. */
  readonly image: { ref: string; digest: string } | undefined;

  private constructor(config: ContainerConfig, id: string, image?: ResolvedImage) {
    this.config = config;
    this.id = id;
    this.image = image ? { ref: image.ref, digest: image.digest } : undefined;
    this.#releaseImage = image?.release;
    this.#layers = image?.layers ?? config.layers;
    const hostname = config.hostname ?? this.id.slice(0, 12);
    const home = parseUser(config.user).uid === 0 ? '/root' : '/';
    this.#env = buildEnv(
      { PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: home, ...(config.tty !== false ? { TERM: 'xterm' } : {}), ...envObject(image?.config.Env ?? []) },
      config.env,
    );
    this.#root = config.rootfs ?? '';
    this.#security = securityOf(config);
  }

  /** Validates the options, resolves (and pulls) the image, prepares the container; nothing runs until start(). */
  static async create(options: ContainerOptions): Promise<Container> {
    let config = validate(ContainerOptionsSchema, options, 'container options');
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
      } catch {
        throw new NotFoundError(`mounts.${i}.source: ${m.source} does not exist`, { path: m.source });
      }
    });
    const image = config.image === undefined ? undefined : await resolveImage(config.image, config.pull, config.imageRoot);
    try {
      if (image) config = withImageDefaults(config, image);
      const argv = config.command ?? [];
      if (argv.length === 0) throw new ValidationError('invalid container options: command: must name a program (the image has no Entrypoint or Cmd)', 'command');
    } catch (e) {
      image?.release?.();
      throw e;
    }
    const id = config.id ?? randomBytes(32).toString('hex');
    let c: Container;
    try {
      c = new Container(config, id, image);
    } catch (e) {
      image?.release?.();
      throw e;
    }
    if (config.namespaces.mount && (config.rootfs === undefined || c.#layers)) {
      // A host sandbox or an overlay needs an empty directory to build its root on, inside the
      // container's own mount namespace; an overlay also its upper and work dirs.
      c.#runDir = join(config.runRoot ?? defaultRunRoot(), c.id);
      c.#root = join(c.#runDir, 'root');
      mkdirSync(c.#root, { recursive: true, mode: 0o700 });
      if (c.#layers) {
        // An existing writable layer is kept: a container started again (the engine's start and
        // restart) finds what it wrote before.
        mkdirSync(join(c.#runDir, 'upper'), { recursive: true, mode: 0o755 });
        mkdirSync(join(c.#runDir, 'work'), { recursive: true, mode: 0o700 });
      }
    }
    return c;
  }

  /**
   * A handle on a container that runs elsewhere (under nsbox-shim, started by another process):
   * the options it was made with, its init's host pid and its cgroup. `exec` enters it with the same
   * namespaces, user and security as its own process; `stats`, `pause` and `resume` use its cgroup.
   * `remove()` ends what this handle started and releases it, never the container itself.
   */
  static async join(options: ContainerOptions, running: { id: string; pid: number; cgroupPaths?: Record<string, string> }): Promise<Container> {
    let config = validate(ContainerOptionsSchema, { ...options, id: running.id }, 'container options');
    const image = config.image === undefined ? undefined : await resolveImage(config.image, 'never', config.imageRoot);
    let c: Container;
    try {
      if (image) config = withImageDefaults(config, image);
      c = new Container(config, running.id, image);
      c.#joined = native.pidfdOpen(running.pid);
    } catch (e) {
      image?.release?.();
      throw e;
    }
    c.#state = 'running';
    if (running.cgroupPaths && Object.keys(running.cgroupPaths).length) c.#cgroup = await Cgroup.open(running.cgroupPaths);
    return c;
  }

  /** create() + start(); a failed start removes what create() prepared. */
  static async run(options: ContainerOptions): Promise<Container> {
    const c = await Container.create(options);
    try {
      await c.start();
    } catch (e) {
      await c.remove();
      throw e;
    }
    return c;
  }

  get state(): ContainerState {
    if (this.#state === 'running' && this.#init && !this.#init.running) return 'exited';
    return this.#state;
  }

  /** Host pid of the container's init process (undefined before start). */
  get pid(): number | undefined {
    return this.#init?.pid;
  }
  get stdin(): Writable | null {
    return this.#init?.stdin ?? null;
  }
  get stdout(): Readable | null {
    return this.#init?.stdout ?? null;
  }
  get stderr(): Readable | null {
    return this.#init?.stderr ?? null;
  }

  async start(): Promise<void> {
    if (this.#state !== 'created') throw new InvalidStateError(`container ${this.id} is ${this.state}; only a created container can start`);
    const cfg = this.config;
    let stdio: PreparedStdio | undefined;
    try {
      stdio = prepareStdio(cfg.stdio, cfg.tty);
      const plan = await this.#prepare(stdio.childFds, stdio.ctty, stdio.consolePath);
      this.#init = await this.#spawn(plan, stdio);
      this.#state = 'running';
    } catch (e) {
      if (stdio) discardStdio(stdio);
      await this.#cgroup?.remove({ force: true }).catch(() => {});
      this.#cgroup = undefined;
      throw e;
    }
  }

  /**
   * Starts the container under `nsbox-shim` instead of as a child of this process: it keeps running
   * after this process exits, its output goes to `<bundle>/container.log`, its exit status to
   * `<bundle>/exit.json` (lib/runtime/shim.ts reads them). This object then only knows where it is:
   * stop, logs and removal go through the bundle (the CLI's stop, logs and rm).
   */
  async startDetached(settings: Omit<ShimSettings, 'tty'> = {}): Promise<{ bundle: string; shimPid: number; pid: number; cgroupPaths: Record<string, string> }> {
    if (this.#state !== 'created') throw new InvalidStateError(`container ${this.id} is ${this.state}; only a created container can start`);
    const cfg = this.config;
    this.#runDir ??= join(cfg.runRoot ?? defaultRunRoot(), this.id);
    const bundle = join(this.#runDir, 'shim');
    const tty = cfg.tty;
    try {
      const plan = await this.#prepare([-1, -1, -1], false, tty !== false ? CONSOLE_PLACEHOLDER : undefined);
      // Written before the shim starts: whoever finds the bundle after a crash of this process
      // (between here and the caller's record) can still remove the cgroup.
      mkdirSync(bundle, { recursive: true, mode: 0o700 });
      writeCgroupPaths(bundle, this.#cgroup?.paths ?? {});
      const { shimPid, pid } = await startDetached(plan, bundle, {
        ...settings,
        tty,
        ...(cfg.stopSignal ? { stopSignal: signalNumber(cfg.stopSignal) } : {}),
      });
      this.#state = 'running';
      this.#bundle = bundle;
      // The shim keeps the container from now on: whether its image is in use is the engine's
      // records' to say, not this process's.
      this.#releaseImage?.();
      this.#releaseImage = undefined;
      return { bundle, shimPid, pid, cgroupPaths: this.#cgroup?.paths ?? {} };
    } catch (e) {
      await this.#cgroup?.remove({ force: true }).catch(() => {});
      this.#cgroup = undefined;
      // Nothing of this container runs: its image is not in use by it (a later start resolves it again).
      this.#releaseImage?.();
      this.#releaseImage = undefined;
      throw e;
    }
  }

  /** The root (overlay or copy), the cgroup and the spawn plan of the container's first process. */
  async #prepare(stdio: [number, number, number], ctty: boolean, consolePath: string | undefined): Promise<SpawnPlan> {
    const cfg = this.config;
    const facts = hostFacts();
    let overlay = this.#layers && this.#runDir ? { lower: this.#layers, upper: join(this.#runDir, 'upper'), work: join(this.#runDir, 'work') } : undefined;
    if (overlay && (cfg.copyLayers || process.env.NSBOX_COPY_LAYERS === '1' || !(await overlayAvailable()))) {
      await copyLayers(overlay.lower, this.#root);
      overlay = undefined;
    }
    this.#cgroup = await this.#makeCgroup(facts.privileged);
    const placement = this.#cgroup?.placement();
    const parts = buildContainerPlan(cfg, {
      id: this.id,
      root: this.#root,
      sandbox: cfg.rootfs === undefined && !this.#layers,
      sandboxEntries: facts.sandboxEntries,
      privileged: facts.privileged,
      ...(facts.subIds ? { subIds: facts.subIds } : {}),
      hostUid: facts.uid,
      hostGid: facts.gid,
      cgroups: viewsFor(facts.cgroups, this.#cgroup),
      bindIsDir: cfg.mounts.map((m) => m.type !== 'bind' || statSync(m.source).isDirectory()),
      ...(consolePath ? { consolePath } : {}),
      ...(overlay ? { overlay } : {}),
      security: this.#security,
    });
    return {
      cloneFlags: parts.cloneFlags,
      ops: parts.ops,
      argv: cfg.command ?? [],
      env: this.#env,
      path: pathFromEnv(this.#env),
      stdio,
      ctty,
      denySetgroups: parts.denySetgroups,
      ...(parts.uidMap ? { uidMap: parts.uidMap, gidMap: parts.gidMap } : {}),
      ...(parts.uidMapper ? { uidMapper: parts.uidMapper } : {}),
      ...(parts.gidMapper ? { gidMapper: parts.gidMapper } : {}),
      ...(placement?.v2Path ? { cgroupPath: placement.v2Path } : {}),
      ...(placement?.procsFiles.length ? { cgroupProcs: placement.procsFiles } : {}),
    };
  }

  /**
   * Every container gets its own cgroup when the caller may create one (root), so it can be limited,
   * measured, paused and killed as a whole. Without privileges, only when resources are asked for.
   */
  async #makeCgroup(privileged: boolean): Promise<Cgroup | undefined> {
    const { resources, cgroupParent } = this.config;
    if (!resources && !privileged) return undefined;
    try {
      return await Cgroup.create(this.id, {
        layout: await cgroupLayout(),
        ...(cgroupParent !== undefined ? { parent: cgroupParent } : {}),
        ...(resources ? { resources } : {}),
      });
    } catch (e) {
      if (resources && privileged) throw e;
      // Without privileges cgroups work only where they are delegated to us: elsewhere the container
      // runs in our cgroup, unlimited, and says so rather than failing.
      if (resources) {
        process.emitWarning(`container ${this.id.slice(0, 12)}: no cgroup (${(e as Error).message}); its resources are not applied`, { code: 'NSBOX_NO_CGROUP' });
      }
      return undefined;
    }
  }

  /** The container's cgroup (undefined when it has none: unprivileged and no resources). */
  get cgroup(): Cgroup | undefined {
    return this.#cgroup;
  }

  #requireCgroup(what: string): Cgroup {
    if (!this.#cgroup) throw new InvalidStateError(`cannot ${what} container ${this.id}: it has no cgroup (start it first; without root, give it resources)`);
    return this.#cgroup;
  }

  /** Memory, CPU, pids and I/O accounting from the container's cgroup. With `{ stream: true }`, a sample every `intervalMs` (default 1000) until it exits. */
  stats(): Promise<CgroupStats>;
  stats(options: { stream: true; intervalMs?: number }): AsyncIterableIterator<CgroupStats>;
  stats(options?: { stream?: boolean; intervalMs?: number }): Promise<CgroupStats> | AsyncIterableIterator<CgroupStats> {
    const cg = this.#requireCgroup('get stats of');
    if (!options?.stream) return cg.stats();
    return this.#statsStream(cg, options.intervalMs ?? 1000);
  }

  async *#statsStream(cg: Cgroup, intervalMs: number): AsyncIterableIterator<CgroupStats> {
    while (this.state === 'running') {
      yield await cg.stats();
      if (this.state !== 'running') return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#init!.wait(), new Promise((r) => (timer = setTimeout(r, intervalMs)))]);
      clearTimeout(timer);
    }
  }

  /** Freezes every process of the container (the cgroup freezer). */
  async pause(): Promise<void> {
    this.#requireRunning('pause');
    await this.#requireCgroup('pause').freeze();
  }

  /** Thaws a paused container. */
  async resume(): Promise<void> {
    this.#requireRunning('resume');
    await this.#requireCgroup('resume').thaw();
  }

  async #spawn(plan: SpawnPlan, stdio: PreparedStdio): Promise<ContainerProcess> {
    const release = await spawnSlot();
    try {
      const { pid, pidfd } = await native.spawn(plan).finally(release);
      return new ContainerProcess(pid, pidfd, stdio);
    } finally {
      for (const fd of stdio.closeAfterSpawn) closeQuietly(fd);
      stdio.closeAfterSpawn = [];
    }
  }

  #requireRunning(what: string): ContainerProcess {
    if (this.state !== 'running' || !this.#init) throw new InvalidStateError(`cannot ${what} container ${this.id}: it is ${this.state}`);
    return this.#init;
  }

  /** Resolves when the init process has exited: `{ exitCode, signal }`. */
  wait(): Promise<ExitStatus> {
    const init = this.#init;
    if (!init) return Promise.reject(new InvalidStateError(`container ${this.id} has not started`));
    this.#exit ??= init.wait().then(async (status) => {
      const cg = this.#cgroup;
      if (!cg || this.config.resources?.memory === undefined) return status;
      const stats = await cg.stats().catch(() => undefined);
      return { ...status, oomKilled: (stats?.memory?.oomKills ?? 0) > 0 };
    });
    return this.#exit;
  }

  /** Sends a signal to the init process (default SIGKILL, as `docker kill`). */
  kill(signal: SignalName | number = 'SIGKILL'): void {
    this.#requireRunning('kill').kill(signal);
  }

  /** SIGTERM (or `signal`), then SIGKILL after `timeout` seconds (default 10). */
  async stop(options: { timeout?: number; signal?: SignalName } = {}): Promise<ExitStatus> {
    const init = this.#init;
    if (!init) throw new InvalidStateError(`container ${this.id} has not started`);
    if (!init.running) return this.wait();
    init.kill(options.signal ?? (this.config.stopSignal as SignalName | undefined) ?? 'SIGTERM');
    const timeoutMs = (options.timeout ?? 10) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const escalate = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        init.kill('SIGKILL');
        resolve();
      }, timeoutMs);
    });
    try {
      await Promise.race([init.wait(), escalate]);
      return await this.wait();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sets the container terminal's size (SIGWINCH inside). */
  resize(cols: number, rows: number): void {
    this.#requireRunning('resize').resize(cols, rows);
  }

  /** Starts another process inside the running container's namespaces. */
  async exec(argv: string[], options: ExecOptions = {}): Promise<ContainerProcess> {
    const enterPidfd = this.#joined ?? this.#requireRunning('exec in').pidfd;
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string' || a.includes('\0'))) {
      throw new ValidationError('invalid exec options: argv: must be a non-empty list of strings', 'argv');
    }
    const opts = validate(ExecOptionsSchema, options, 'exec options');
    const cfg = this.config;
    const userns = cfg.namespaces.user !== false;
    const env = buildEnv(Object.fromEntries(this.#env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])), opts.env);
    const user = parseUser(opts.user ?? cfg.user);
    const facts = hostFacts();
    const security = opts.privileged ? securityOf({ ...cfg, privileged: true }) : this.#security;
    const stdio = prepareStdio(opts.detach ? 'ignore' : opts.stdio, opts.detach ? false : opts.tty);
    try {
      const plan: SpawnPlan = {
        cloneFlags: 0,
        enterPidfd,
        // The cgroup namespace is joined last, by the new process itself: the kernel refuses to place
        // a process (CLONE_INTO_CGROUP) from outside the cgroup namespace's scope.
        enterFlags: namespaceFlags(cfg.namespaces) & ~(CLONE.NEWTIME | CLONE.NEWCGROUP),
        ops: [
          ...(cfg.namespaces.cgroup ? [{ op: 'setns' as const, fd: enterPidfd, flags: CLONE.NEWCGROUP }] : []),
          { op: 'chdir', target: opts.cwd ?? cfg.cwd ?? '/' },
          // The same capabilities, no_new_privs and seccomp as the container's own process (a
          // privileged exec: those of a privileged container).
          ...processOps(user, opts.user !== undefined || cfg.user !== undefined || userns, userns, facts.privileged, security),
        ],
        argv,
        env,
        path: pathFromEnv(env),
        stdio: stdio.childFds,
        ctty: stdio.ctty,
        ...(opts.detach ? { pdeathsig: false } : {}),
      };
      const placement = this.#cgroup?.placement();
      if (placement?.v2Path) plan.cgroupPath = placement.v2Path;
      if (placement?.procsFiles.length) plan.cgroupProcs = placement.procsFiles;
      const proc = await this.#spawn(plan, stdio);
      this.#execs.add(proc);
      void proc.wait().catch(() => {});
      return proc;
    } catch (e) {
      discardStdio(stdio);
      throw e;
    }
  }

  /** Kills what still runs, releases fds and streams, and removes nsbox's directories. Idempotent. */
  async remove(): Promise<void> {
    if (this.#state === 'removed') return;
    if (this.#joined !== undefined) {
      for (const p of this.#execs) p.kill('SIGKILL');
      await Promise.all([...this.#execs].map((p) => p.wait().catch(() => undefined)));
      for (const p of this.#execs) p.close();
      this.#execs.clear();
      closeQuietly(this.#joined);
      this.#joined = undefined;
      this.#cgroup = undefined;
      this.#releaseImage?.();
      this.#releaseImage = undefined;
      this.#state = 'removed';
      return;
    }
    // A detached container: its shim stops it (and exits); the cgroup's kill below ends any rest.
    if (this.#bundle) stopDetached(this.#bundle);
    const procs = [...this.#execs, ...(this.#init ? [this.#init] : [])];
    // A frozen process cannot die: thaw a paused container before killing it.
    if (this.#cgroup && procs.some((p) => p.running)) await this.#cgroup.thaw().catch(() => {});
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.wait().catch(() => undefined)));
    for (const p of procs) p.close();
    this.#execs.clear();
    if (this.#cgroup) {
      // With its init reaped, a container with its own pid namespace has no process left: the plain
      // remove is enough, and much cheaper than the forced one (freeze, kill, thaw).
      await this.#cgroup.remove().catch((e: unknown) => {
        if (e instanceof InvalidStateError) return this.#cgroup!.remove({ force: true });
        throw e;
      });
      this.#cgroup = undefined;
    }
    if (this.#runDir) {
      // Only empty directories: the root was a mount point inside the container's namespace only.
      // The writable layer (or the copied root) holds what the container wrote: it goes with the container.
      if (this.#layers) for (const d of ['upper', 'work', 'root']) rmSync(join(this.#runDir, d), { recursive: true, force: true });
      if (this.#bundle) rmSync(this.#bundle, { recursive: true, force: true });
      // Only a root of nsbox's own making (a sandbox's or an overlay's), never a rootfs it was given.
      if (this.#root === join(this.#runDir, 'root')) rmdirQuietly(this.#root);
      rmdirQuietly(this.#runDir);
    }
    this.#releaseImage?.();
    this.#releaseImage = undefined;
    this.#state = 'removed';
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}
