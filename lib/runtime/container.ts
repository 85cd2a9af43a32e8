/**
 * `Container`: a process tree in fresh namespaces on a prepared root, owned by this Node process.
 * create() validates and prepares, start() spawns (off the event loop), wait()/kill()/stop() follow
 * the init process through its pidfd, exec() enters the namespaces, remove() leaves nothing behind.
 * A container that another process runs is reached through `Container.join` (a `JoinedContainer`).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Cgroup } from '../cgroup/cgroup.js';
import type { CgroupStats } from '../cgroup/driver.js';
import { InvalidStateError, ValidationError } from '../errors.js';
import type { SpawnPlan } from '../native.js';
import { readHealth, writeCgroupPaths, type HealthResult, type ShimHealth } from './bundle.js';
import { HealthMonitor } from './health-monitor.js';
import { waitForBundleHealth, type HealthWaitOptions } from './health-wait.js';
import { resolveHealthcheck } from './health-config.js';
import { execTemplateOf, shimHealthcheck } from './health-plan.js';
import { writeExecTemplate } from './exec-template.js';
import { containerEnv } from './container-env.js';
import { ContainerStats } from './container-stats.js';
import { checkConfig, firstProcessPlan, makeCgroup, makeRunDirs } from './container-setup.js';
import { execProcess } from './exec-process.js';
import { hostFacts } from './host.js';
import type { ImageResolver, ResolvedImage } from './image-source.js';
import { withImageDefaults } from './image-config.js';
import { JoinedContainer, resolveWith, type RunningContainer } from './joined-container.js';
import { launch } from './launch.js';
import { ContainerOptionsSchema, validate, type ContainerConfig, type ContainerOptions, type ExecOptions } from './options.js';
import type { ProcessSecurity } from './plan.js';
import type { ContainerProcess, ExitStatus } from './process.js';
import { exitOfPidfd, pidfdOf } from './process-exit.js';
import { copyLayers, overlayAvailable } from './rootfs-copy.js';
import { defaultRunRoot } from './run-root.js';
import { securityOf } from './security.js';
import { readyVolatileLayer } from './volatile-layer.js';
import type { SpareShims } from './spare-shims.js';
import { CONSOLE_PLACEHOLDER, readShimPid, startDetached, stopDetached, type ShimProxy, type ShimSettings } from './shim.js';
import { signalNumber, type SignalName } from './signals.js';
import { discardStdio, prepareStdio, type PreparedStdio } from './stdio.js';
import { explainUnreachable } from './unreachable-path.js';

export type ContainerState = 'created' | 'running' | 'exited' | 'removed';

/** What a container takes from outside the runtime layer. */
export interface ContainerDeps {
  /** Resolves (and pulls) `options.image`; without it, a container with an image cannot be made. */
  images?: ImageResolver;
}

/** `notEmpty`: a directory that holds more than the runtime made is left (to whoever put it there). */
function rmdirQuietly(dir: string, notEmpty = false): void {
  try {
    rmdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && !(notEmpty && code === 'ENOTEMPTY')) throw e;
  }
}

export class Container implements AsyncDisposable {
  readonly id: string;
  readonly config: ContainerConfig;
  /** The image the container was made from. */
  readonly image: { ref: string; digest: string } | undefined;
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
  #health: HealthMonitor | undefined;
  #plan: SpawnPlan | undefined;

  /** @internal Use `Container.create`. */
  protected constructor(config: ContainerConfig, id: string, image?: ResolvedImage) {
    this.config = config;
    this.id = id;
    this.image = image ? { ref: image.ref, digest: image.digest } : undefined;
    this.#releaseImage = image?.release;
    this.#layers = image?.layers ?? config.layers;
    this.#env = containerEnv(config, id, image);
    this.#root = config.rootfs ?? '';
    this.#security = securityOf(config);
  }

  /** Validates the options, resolves (and pulls) the image, prepares the container; nothing runs until start(). */
  static async create(options: ContainerOptions, deps: ContainerDeps = {}): Promise<Container> {
    let config = validate(ContainerOptionsSchema, options, 'container options');
    checkConfig(config);
    const image = config.image === undefined ? undefined : await resolveWith(deps.images, config.image, config.imageRoot, config.pull);
    let c: Container;
    try {
      if (image) config = withImageDefaults(config, image);
      const argv = config.command ?? [];
      if (argv.length === 0) throw new ValidationError('invalid container options: command: must name a program (the image has no Entrypoint or Cmd)', 'command');
      c = new this(config, config.id ?? randomBytes(32).toString('hex'), image);
    } catch (e) {
      image?.release?.();
      throw e;
    }
    const dirs = makeRunDirs(config, c.id, c.#layers !== undefined);
    if (dirs) {
      c.#runDir = dirs.runDir;
      c.#root = dirs.root;
    }
    return c;
  }

  /**
   * The cgroup that a start of a container with these options makes (undefined where it gets
   * none), made ahead of the start and named in `bundle`'s cgroup.json as a start names it; the
   * start's `startDetached({ cgroup })` takes it (lib/engine/prepared-cgroups.ts).
   */
  static async makeCgroupAhead(options: ContainerOptions, id: string, bundle: string): Promise<Cgroup | undefined> {
    const config = validate(ContainerOptionsSchema, options, 'container options');
    const cg = await makeCgroup(config, id, hostFacts().privileged);
    if (!cg) return undefined;
    try {
      mkdirSync(bundle, { recursive: true, mode: 0o700 });
      writeCgroupPaths(bundle, cg.paths);
    } catch (e) {
      await cg.remove({ force: true });
      throw e;
    }
    return cg;
  }

  /**
   * A handle on a container that runs elsewhere (under nsbox-shim, started by another process):
   * see `JoinedContainer`.
   */
  static join(options: ContainerOptions, running: RunningContainer, deps: ContainerDeps = {}): Promise<JoinedContainer> {
    return JoinedContainer.open(options, running, deps.images);
  }

  /** create() + start(); a failed start removes what create() prepared. */
  static async run(options: ContainerOptions, deps: ContainerDeps = {}): Promise<Container> {
    const c = await this.create(options, deps);
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
      this.#init = await launch(plan, stdio);
      this.#plan = plan;
      this.#state = 'running';
      this.#startHealth(this.#init);
    } catch (e) {
      if (stdio) discardStdio(stdio);
      await this.#dropCgroup(e);
      throw explainUnreachable(e, cfg);
    }
  }

  /**
   * Starts the container under `nsbox-shim` instead of as a child of this process: it keeps running
   * after this process exits, its output goes to `<bundle>/container.log`, its exit status to
   * `<bundle>/exit.json` (lib/runtime/shim.ts reads them). This object then only knows where it is:
   * stop, logs and removal go through the bundle (the CLI's stop, logs and rm). `onSpawned` is told
   * the shim's pid as soon as it runs, before its report (the engine prepares its record meanwhile).
   * `spares`: where a shim started ahead may be taken from (spare-shims.ts). `cgroup`: the one
   * made ahead for this start (makeCgroupAhead), taken instead of making one; removed if it fails.
   */
  async startDetached(settings: Omit<ShimSettings, 'tty' | 'healthcheck'> & { healthLog?: HealthResult[]; holdFds?: readonly number[]; proxies?: readonly ShimProxy[]; onSpawned?: (shimPid: number) => void; spares?: SpareShims; cgroup?: Cgroup } = {}): Promise<{ bundle: string; shimPid: number; pid: number; shimStartTime?: number; startedAt?: string; cgroupPaths: Record<string, string> }> {
    if (this.#state !== 'created') throw new InvalidStateError(`container ${this.id} is ${this.state}; only a created container can start`);
    const cfg = this.config;
    this.#runDir ??= join(cfg.runRoot ?? defaultRunRoot(), this.id);
    const bundle = join(this.#runDir, 'shim');
    const tty = cfg.tty;
    const { healthLog, holdFds, proxies, onSpawned, spares, cgroup, ...shim } = settings;
    // Ours from here: a failed start removes it (#dropCgroup) as one it made.
    if (cgroup) this.#cgroup = cgroup;
    try {
      const plan = await this.#prepare([-1, -1, -1], false, tty !== false ? CONSOLE_PLACEHOLDER : undefined, cgroup);
      // Written before the shim starts: whoever finds the bundle after a crash of this process
      // (between here and the caller's record) can still remove the cgroup.
      mkdirSync(bundle, { recursive: true, mode: 0o700 });
      const health = resolveHealthcheck(cfg.healthcheck, cfg.shell);
      const target = { id: this.id, config: cfg, env: this.#env, security: this.#security, cgroup: this.#cgroup };
      // Both are the bundle's before the shim starts (exec.json for the quick exec), written on this
      // thread: neither is fsynced, and each is a write and a rename of a few kB in the page cache.
      // (cgroup.json names a cgroup made ahead already: makeCgroupAhead.)
      if (!cgroup) writeCgroupPaths(bundle, this.#cgroup?.paths ?? {});
      writeExecTemplate(bundle, execTemplateOf(target));
      const report = await startDetached(plan, bundle, {
        ...shim,
        tty,
        ...(health ? { healthcheck: shimHealthcheck(target, health, healthLog) } : {}),
        ...(cfg.stopSignal ? { stopSignal: signalNumber(cfg.stopSignal) } : {}),
      }, holdFds, proxies, onSpawned, spares);
      this.#state = 'running';
      this.#bundle = bundle;
      // The shim keeps the container from now on: whether its image is in use is the engine's
      // records' to say, not this process's.
      this.#releaseImage?.();
      this.#releaseImage = undefined;
      return { bundle, ...report, cgroupPaths: this.#cgroup?.paths ?? {} };
    } catch (e) {
      await this.#dropCgroup(e);
      // Nothing of this container runs: its image is not in use by it (a later start resolves it again).
      this.#releaseImage?.();
      this.#releaseImage = undefined;
      throw explainUnreachable(e, cfg);
    }
  }

  /** In-process: this process runs the HEALTHCHECK (under nsbox-shim, the shim does). */
  #startHealth(init: ContainerProcess): void {
    const h = resolveHealthcheck(this.config.healthcheck, this.config.shell);
    if (!h) return;
    // Not through exec(): its processes are kept until remove(), a probe's go at its end.
    const target = { id: this.id, config: this.config, env: this.#env, security: this.#security, cgroup: this.#cgroup, enterPidfd: init.pidfd };
    const monitor = new HealthMonitor(h, (argv) => execProcess(target, argv, {}));
    this.#health = monitor;
    // How it ended is wait()'s to tell; the monitor only needs to know that it has.
    void init.wait().then(() => monitor.stop(), () => monitor.stop());
  }

  /** docker's State.Health (undefined without a healthcheck, or before start). */
  health(): ShimHealth | undefined {
    return this.#bundle ? readHealth(this.#bundle) : this.#health?.state;
  }

  /** Resolves with State.Health once its status is in `until` (default ['healthy']); rejects once the container stops first. */
  waitForHealth(opts: HealthWaitOptions = {}): Promise<ShimHealth> {
    if (this.#bundle) return waitForBundleHealth(this.#bundle, this.id, opts);
    if (!this.#health) return Promise.reject(new InvalidStateError(`container ${this.id} has no healthcheck, or has not started`));
    return this.#health.wait(opts);
  }

  /** After a failed start: removes the cgroup made for it; a failure to do so joins the start's error. */
  async #dropCgroup(cause: unknown): Promise<void> {
    const cg = this.#cgroup;
    this.#cgroup = undefined;
    try {
      await cg?.remove({ force: true });
    } catch (e) {
      process.emitWarning(`container ${this.id.slice(0, 12)}: its cgroup ${cg!.name} was left after a failed start (${(cause as Error).message}): ${(e as Error).message}`, { code: 'NSBOX_CGROUP_LEFT' });
    }
  }

  /** The root (overlay or copy), the cgroup and the spawn plan of the container's first process. */
  async #prepare(stdio: [number, number, number], ctty: boolean, consolePath: string | undefined, cgroup?: Cgroup): Promise<SpawnPlan> {
    const cfg = this.config;
    const facts = hostFacts();
    let overlay = this.#layers && this.#runDir ? { lower: this.#layers, upper: join(this.#runDir, 'upper'), work: join(this.#runDir, 'work'), ...(cfg.volatileLayer ? { volatile: true } : {}) } : undefined;
    if (overlay && (cfg.copyLayers || process.env.NSBOX_COPY_LAYERS === '1' || !(await overlayAvailable()))) {
      await copyLayers(overlay.lower, this.#root);
      overlay = undefined;
    }
    if (overlay?.volatile) readyVolatileLayer(this.id, overlay.work);
    this.#cgroup = cgroup ?? (await makeCgroup(cfg, this.id, facts.privileged));
    return firstProcessPlan(cfg, {
      id: this.id,
      root: this.#root,
      env: this.#env,
      security: this.#security,
      cgroup: this.#cgroup,
      facts,
      sandbox: cfg.rootfs === undefined && !this.#layers,
      ...(overlay ? { overlay } : {}),
      stdio,
      ctty,
      ...(consolePath ? { consolePath } : {}),
    });
  }

  /**
   * What the container's root is made of before it runs (for copying files in; lib/engine/copy.ts):
   * the directory it is mounted on, its overlay parts, its mounts. Undefined for a host sandbox,
   * whose root exists only while it runs.
   */
  protected rootParts(): { root: string; overlay?: { lower: string[]; upper: string; work: string }; mounts: ContainerConfig['mounts'] } | undefined {
    if (this.config.rootfs === undefined && !this.#layers) return undefined;
    const overlay = this.#layers && this.#runDir ? { lower: this.#layers, upper: join(this.#runDir, 'upper'), work: join(this.#runDir, 'work') } : undefined;
    return { root: this.#root, ...(overlay ? { overlay } : {}), mounts: this.config.mounts };
  }

  /**
   * @internal The spawn plan its start ran (in-process starts only): the CLI keeps it for the
   * next identical `run --rm` (lib/cli/quick/run-plan.ts).
   */
  get spawnPlan(): SpawnPlan | undefined {
    return this.#plan;
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
    return ContainerStats.stream(cg, () => this.state === 'running', () => this.#init!.wait(), options.intervalMs ?? 1000);
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
      return { ...status, oomKilled: await ContainerStats.oomKilled(cg) };
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

  /** Starts another process inside the running container's namespaces and cgroup. */
  async exec(argv: string[], options: ExecOptions = {}): Promise<ContainerProcess> {
    const init = this.#requireRunning('exec in');
    const proc = await execProcess({ id: this.id, config: this.config, env: this.#env, security: this.#security, cgroup: this.#cgroup, enterPidfd: init.pidfd }, argv, options);
    this.#execs.add(proc);
    return proc;
  }

  /** Kills what still runs, releases fds and streams, and removes nsbox's directories. Idempotent. */
  async remove(): Promise<void> {
    if (this.#state === 'removed') return;
    // A detached container: its shim stops it (and exits); the cgroup's kill below ends any rest.
    // Its pidfd is taken first, while its pid file says it runs (the shim removes the file as it goes).
    const shimPid = this.#bundle ? readShimPid(this.#bundle) : undefined;
    const shimPidfd = shimPid !== undefined ? pidfdOf(shimPid) : undefined;
    if (this.#bundle) stopDetached(this.#bundle);
    this.#health?.stop();
    const procs = [...this.#execs, ...(this.#init ? [this.#init] : [])];
    // A frozen process cannot die: thaw a paused container before killing it.
    if (this.#cgroup && procs.some((p) => p.running)) await ContainerStats.thawForKill(this.#cgroup);
    for (const p of procs) p.kill('SIGKILL');
    // How each ended is for wait() callers; removal only needs them ended.
    await Promise.allSettled(procs.map((p) => p.wait()));
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
    // Its container ended, the shim records the exit and goes: only then is the bundle done with.
    if (shimPidfd !== undefined) await exitOfPidfd(shimPidfd);
    if (this.#runDir) {
      // Only empty directories: the root was a mount point inside the container's namespace only.
      // The writable layer (or the copied root) holds what the container wrote: it goes with the container.
      if (this.#layers) for (const d of ['upper', 'work', 'root']) rmSync(join(this.#runDir, d), { recursive: true, force: true });
      if (this.#bundle) rmSync(this.#bundle, { recursive: true, force: true });
      // Only a root of nsbox's own making (a sandbox's or an overlay's), never a rootfs it was given.
      if (this.#root === join(this.#runDir, 'root')) rmdirQuietly(this.#root);
      // The engine's run directory is the container's own (its record is there): the engine removes it.
      rmdirQuietly(this.#runDir, true);
    }
    this.#releaseImage?.();
    this.#releaseImage = undefined;
    this.#state = 'removed';
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}
