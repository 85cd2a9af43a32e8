/**
 * `Container`: a process tree in fresh namespaces on a prepared root, owned by this Node process.
 * create() validates and prepares, start() spawns (off the event loop), wait()/kill()/stop() follow
 * the init process through its pidfd, exec() enters the namespaces, remove() leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { InvalidStateError, NotFoundError, ValidationError } from '../errors.js';
import { native, type SpawnPlan } from '../native.js';
import { hostFacts } from './host.js';
import {
  ContainerOptionsSchema, ExecOptionsSchema, validate,
  type ContainerConfig, type ContainerOptions, type ExecOptions,
} from './options.js';
import { buildContainerPlan, buildEnv, cloneFlagsFor, parseUser, CLONE } from './plan.js';
import { ContainerProcess, type ExitStatus } from './process.js';
import { closeQuietly, discardStdio, prepareStdio, type PreparedStdio } from './stdio.js';
import type { SignalName } from './signals.js';

export type ContainerState = 'created' | 'running' | 'exited' | 'removed';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function defaultRunRoot(): string {
  if (process.env.NSBOX_RUN_ROOT) return process.env.NSBOX_RUN_ROOT;
  if (process.geteuid?.() === 0) return '/run/nsbox';
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'nsbox');
  return join(tmpdir(), `nsbox-${process.geteuid?.() ?? 0}`);
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
  #root: string;
  #env: string[];

  private constructor(config: ContainerConfig) {
    this.config = config;
    this.id = config.id ?? randomBytes(32).toString('hex');
    const hostname = config.hostname ?? this.id.slice(0, 12);
    const home = parseUser(config.user).uid === 0 ? '/root' : '/';
    this.#env = buildEnv(
      { PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: home, ...(config.tty !== false ? { TERM: 'xterm' } : {}) },
      config.env,
    );
    this.#root = config.rootfs ?? '';
  }

  /** Validates the options and prepares the container; nothing runs until start(). */
  static async create(options: ContainerOptions): Promise<Container> {
    const config = validate(ContainerOptionsSchema, options, 'container options');
    if (!config.namespaces.mount && (config.mounts.length > 0 || config.readonlyRootfs)) {
      throw new ValidationError('invalid container options: mounts and readonlyRootfs need a private mount namespace', 'namespaces.mount');
    }
    if (config.rootfs !== undefined) {
      let isDir = false;
      try {
        isDir = statSync(config.rootfs).isDirectory();
      } catch {
        throw new NotFoundError(`rootfs ${config.rootfs} does not exist`, { path: config.rootfs });
      }
      if (!isDir) throw new ValidationError(`invalid container options: rootfs: ${config.rootfs} is not a directory`, 'rootfs');
    }
    config.mounts.forEach((m, i) => {
      if (m.type !== 'bind') return;
      try {
        statSync(m.source);
      } catch {
        throw new NotFoundError(`mounts.${i}.source: ${m.source} does not exist`, { path: m.source });
      }
    });
    const c = new Container(config);
    if (config.rootfs === undefined && config.namespaces.mount) {
      // A host sandbox needs an empty directory to build its root on, inside its own mount namespace.
      c.#runDir = join(config.runRoot ?? defaultRunRoot(), c.id);
      c.#root = join(c.#runDir, 'root');
      mkdirSync(c.#root, { recursive: true, mode: 0o700 });
    }
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
    const facts = hostFacts();
    const stdio = prepareStdio(cfg.stdio, cfg.tty);
    try {
      const parts = buildContainerPlan(cfg, {
        id: this.id,
        root: this.#root,
        sandbox: cfg.rootfs === undefined,
        sandboxEntries: facts.sandboxEntries,
        privileged: facts.privileged,
        hostUid: facts.uid,
        hostGid: facts.gid,
        cgroups: facts.cgroups,
        bindIsDir: cfg.mounts.map((m) => m.type !== 'bind' || statSync(m.source).isDirectory()),
        ...(stdio.consolePath ? { consolePath: stdio.consolePath } : {}),
      });
      const plan: SpawnPlan = {
        cloneFlags: parts.cloneFlags,
        ops: parts.ops,
        argv: cfg.command,
        env: this.#env,
        path: pathFromEnv(this.#env),
        stdio: stdio.childFds,
        ctty: stdio.ctty,
        denySetgroups: parts.denySetgroups,
        ...(parts.uidMap ? { uidMap: parts.uidMap, gidMap: parts.gidMap } : {}),
      };
      this.#init = await this.#spawn(plan, stdio);
      this.#state = 'running';
    } catch (e) {
      discardStdio(stdio);
      throw e;
    }
  }

  async #spawn(plan: SpawnPlan, stdio: PreparedStdio): Promise<ContainerProcess> {
    try {
      const { pid, pidfd } = await native.spawn(plan);
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
    if (!this.#init) return Promise.reject(new InvalidStateError(`container ${this.id} has not started`));
    return this.#init.wait();
  }

  /** Sends a signal to the init process (default SIGKILL, as `docker kill`). */
  kill(signal: SignalName | number = 'SIGKILL'): void {
    this.#requireRunning('kill').kill(signal);
  }

  /** SIGTERM (or `signal`), then SIGKILL after `timeout` seconds (default 10). */
  async stop(options: { timeout?: number; signal?: SignalName } = {}): Promise<ExitStatus> {
    const init = this.#init;
    if (!init) throw new InvalidStateError(`container ${this.id} has not started`);
    if (!init.running) return init.wait();
    init.kill(options.signal ?? 'SIGTERM');
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
      return await init.wait();
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
    const init = this.#requireRunning('exec in');
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string' || a.includes('\0'))) {
      throw new ValidationError('invalid exec options: argv: must be a non-empty list of strings', 'argv');
    }
    const opts = validate(ExecOptionsSchema, options, 'exec options');
    const cfg = this.config;
    const userns = cfg.namespaces.user !== false;
    const env = buildEnv(Object.fromEntries(this.#env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])), opts.env);
    const user = parseUser(opts.user ?? cfg.user);
    const facts = hostFacts();
    const stdio = prepareStdio(opts.stdio, opts.tty);
    try {
      const plan: SpawnPlan = {
        cloneFlags: 0,
        enterPidfd: init.pidfd,
        enterFlags: cloneFlagsFor(cfg.namespaces) & ~CLONE.NEWTIME,
        ops: [
          ...(opts.user !== undefined || cfg.user !== undefined || userns
            ? [{ op: 'setids' as const, uid: user.uid, gid: user.gid, ...(facts.privileged || !userns ? { groups: user.groups ?? [] } : {}) }]
            : []),
          { op: 'chdir', target: opts.cwd ?? cfg.cwd },
        ],
        argv,
        env,
        path: pathFromEnv(env),
        stdio: stdio.childFds,
        ctty: stdio.ctty,
      };
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
    const procs = [...this.#execs, ...(this.#init ? [this.#init] : [])];
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.wait().catch(() => undefined)));
    for (const p of procs) p.close();
    this.#execs.clear();
    if (this.#runDir) {
      // Only empty directories: the root was a mount point inside the container's namespace only.
      rmdirQuietly(this.#root);
      rmdirQuietly(this.#runDir);
    }
    this.#state = 'removed';
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}
