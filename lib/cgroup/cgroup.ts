import { EventEmitter, on } from 'node:events';
import path from 'node:path';
import { InvalidStateError, NotFoundError, NsboxError, ValidationError, reportCleanupError } from '../errors.js';
import { applyDeviceRules, type DeviceRule } from './devices.js';
import { detectCgroups, type CgroupLayout, type DetectOptions } from './detect.js';
import type { CgroupDriver, CgroupEvent, CgroupPlacement, CgroupStats, KillOptions } from './driver.js';
import { cgroupParent, cgroupPathFor, driverFromPaths, makeDriver, type DriverKind } from './paths.js';
import { pruneCgroups, type PruneOptions } from './prune.js';
import { ResourcesSchema, type ParsedResources, type Resources } from './resources.js';

export interface CgroupOptions {
  /**
   * Where the cgroup goes: a relative parent is taken beneath this process's own cgroup in each
   * hierarchy, an absolute one as is. Default: $NSBOX_CGROUP_PARENT, else 'nsbox'.
   */
  parent?: string;
  /** Limits applied right after creation. */
  resources?: Resources;
  /**
   * Device rules applied right after creation, as runtime-spec's `linux.resources.devices` (the
   * last rule that covers an access decides; a type `a` rule resets): through the v1 devices
   * controller where mounted, else as an eBPF device program on the cgroup2 directory (root only).
   * `DEFAULT_DEVICE_RULES` is docker's list.
   */
  devices?: readonly DeviceRule[];
  /** 'auto' (default): v2 on cgroup2-only hosts, else v1 (with the unified twin on hybrid hosts). Or a ready driver. */
  driver?: DriverKind | CgroupDriver;
  /** The host's layout, for tests or to skip detection; default: detected from /proc/self. */
  layout?: CgroupLayout;
  /** How often to poll where the kernel cannot notify (v1 OOM and emptiness), and the v2 safety net. */
  eventIntervalMs?: number;
}

export interface RemoveOptions {
  /** Kill the processes still inside first; without it, a cgroup with processes is an InvalidStateError. */
  force?: boolean;
}

export type CgroupPruneOptions = PruneOptions & Pick<CgroupOptions, 'parent' | 'layout'> & { driver?: DriverKind };

type CgroupEvents = { oom: [{ oomKills: number }]; empty: []; error: [unknown] };

export function parseResources(input: Resources, field = 'resources'): ParsedResources {
  const r = ResourcesSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const at = [field, ...issue.path.map(String)].join('.');
  throw new ValidationError(`${at}: ${issue.message}`, at, r.error);
}

async function resolveDriver(name: string, options: CgroupOptions, create: boolean): Promise<CgroupDriver> {
  if (typeof options.driver === 'object') return options.driver;
  const layout = options.layout ?? (await detectCgroups());
  const parent = cgroupParent(options.parent);
  return makeDriver(layout, options.driver ?? 'auto', (own) => cgroupPathFor(own, parent, name, create));
}

/**
 * A control group, on whichever cgroup version the host runs. Emits 'oom' when the kernel's OOM killer
 * ends a process inside, and 'empty' when the last process leaves; watching starts with the first
 * listener and stops with the last one (or close()).
 */
export class Cgroup extends EventEmitter<CgroupEvents> {
  readonly name: string;
  readonly driver: CgroupDriver;
  readonly #intervalMs: number | undefined;
  #stopWatching: (() => void) | undefined;

  private constructor(name: string, driver: CgroupDriver, intervalMs?: number) {
    super();
    this.name = name;
    this.driver = driver;
    this.#intervalMs = intervalMs;
    // Untyped view: newListener/removeListener are EventEmitter's own events, not in CgroupEvents.
    const self = this as EventEmitter;
    self.on('newListener', (event: string | symbol) => {
      if ((event === 'oom' || event === 'empty') && !this.#stopWatching) this.#watch();
    });
    self.on('removeListener', () => {
      if (this.listenerCount('oom') + this.listenerCount('empty') === 0) this.close();
    });
  }

  /** The host's cgroup mode and where each controller is mounted. */
  static detect(options?: DetectOptions): Promise<CgroupLayout> {
    return detectCgroups(options);
  }

  /** Creates a new cgroup (an InvalidStateError if it exists) and applies `options.resources`. */
  static async create(name: string, options: CgroupOptions = {}): Promise<Cgroup> {
    const resources = options.resources === undefined ? undefined : parseResources(options.resources);
    const driver = await resolveDriver(name, options, true);
    try {
      await driver.create();
    } catch (err) {
      if (err instanceof NsboxError && err.code === 'EEXIST') throw new InvalidStateError(`cgroup ${name} already exists (${err.path})`);
      throw err;
    }
    const cgroup = new Cgroup(name, driver, options.eventIntervalMs);
    if (resources || options.devices) {
      try {
        if (resources) await driver.set(resources);
        if (options.devices) await applyDeviceRules(driver, options.devices);
      } catch (err) {
        await driver.remove().catch(reportCleanupError(`cgroup ${name}: removing it after its limits were refused`));
        throw err;
      }
    }
    return cgroup;
  }

  /**
   * Opens an existing cgroup: by name (resolved like create(): beneath the parent, or an absolute
   * cgroup path), or by the `paths` record of a Cgroup, as stored by an earlier process.
   */
  static async open(nameOrPaths: string | Record<string, string>, options: Omit<CgroupOptions, 'resources'> = {}): Promise<Cgroup> {
    let driver: CgroupDriver;
    let name: string;
    if (typeof nameOrPaths === 'string') {
      name = nameOrPaths;
      driver = await resolveDriver(name, options, false);
    } else {
      const kind = typeof options.driver === 'string' ? options.driver : 'auto';
      driver = typeof options.driver === 'object' ? options.driver : driverFromPaths(options.layout ?? (await detectCgroups()), nameOrPaths, kind);
      name = Object.values(nameOrPaths)[0]?.split('/').pop() ?? '';
    }
    if (!(await driver.exists())) throw new NotFoundError(`cgroup ${name} does not exist (${Object.values(driver.paths)[0]})`);
    return new Cgroup(name, driver, options.eventIntervalMs);
  }

  /**
   * Removes the empty nsbox-named cgroups beneath the parent (default: the one create() uses), left
   * behind by processes that crashed. Returns the directories removed.
   */
  static async prune(options: CgroupPruneOptions = {}): Promise<string[]> {
    const layout = options.layout ?? (await detectCgroups());
    const parent = cgroupParent(options.parent);
    const driver = makeDriver(layout, options.driver ?? 'auto', (own) => (parent.startsWith('/') ? parent : path.posix.join(own, parent)));
    return pruneCgroups(driver, { parentIsNsbox: parent.includes('nsbox') }, options);
  }

  get version(): 1 | 2 {
    return this.driver.version;
  }

  /** The cgroup's directory in each hierarchy: controller name (or 'unified') → absolute path. */
  get paths(): Record<string, string> {
    return { ...this.driver.paths };
  }

  set(resources: Resources): Promise<void> {
    return this.driver.set(parseResources(resources));
  }

  stats(): Promise<CgroupStats> {
    return this.driver.stats();
  }

  freeze(): Promise<void> {
    return this.driver.freeze();
  }

  thaw(): Promise<void> {
    return this.driver.thaw();
  }

  /** Frozen or freezing (paused): a process placed in it now would not run. */
  frozen(): Promise<boolean> {
    return this.driver.frozen();
  }

  /** SIGKILLs every process (atomically through cgroup.kill where the kernel has it) and waits until none is left. */
  kill(options?: KillOptions): Promise<void> {
    return this.driver.kill(options);
  }

  procs(): Promise<number[]> {
    return this.driver.procs();
  }

  addProcess(pid: number): Promise<void> {
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new ValidationError(`invalid pid ${pid}`, 'pid');
    return this.driver.addProcess(pid);
  }

  /** Where a spawner puts a child before it runs: see CgroupPlacement. */
  placement(): CgroupPlacement {
    return this.driver.placement();
  }

  /** Removes the cgroup in every hierarchy, sub-cgroups first; a cgroup already gone is fine. */
  async remove(options: RemoveOptions = {}): Promise<void> {
    this.close();
    if (options.force) {
      if (!(await this.driver.exists())) return;
      await this.driver.kill();
    } else {
      // A cgroup already gone reads as no processes; the driver's remove tolerates it too.
      const pids = await this.driver.procs().catch((e: unknown) => {
        if (e instanceof NotFoundError) return [];
        throw e;
      });
      if (pids.length > 0) throw new InvalidStateError(`cgroup ${this.name} still has processes (${pids.join(' ')}); remove({ force: true }) kills them`);
    }
    await this.driver.remove();
  }

  /** Stops watching for events (listeners stay registered but hear nothing more). */
  close(): void {
    this.#stopWatching?.();
    this.#stopWatching = undefined;
  }

  /** The events as an async iterator, until `signal` aborts. */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<CgroupEvent> {
    const emitter = new EventEmitter<{ event: [CgroupEvent] }>();
    const onOom = (e: { oomKills: number }) => emitter.emit('event', { type: 'oom', oomKills: e.oomKills });
    const onEmpty = () => emitter.emit('event', { type: 'empty' });
    const iter = on(emitter, 'event', options.signal ? { signal: options.signal } : {});
    this.on('oom', onOom);
    this.on('empty', onEmpty);
    try {
      for await (const [event] of iter) yield event as CgroupEvent;
    } catch (err) {
      if (!(err instanceof Error && err.name === 'AbortError')) throw err;
    } finally {
      this.off('oom', onOom);
      this.off('empty', onEmpty);
    }
  }

  #watch(): void {
    const intervalMs = this.#intervalMs;
    this.#stopWatching = this.driver.events(
      (e) => {
        if (e.type === 'oom') this.emit('oom', { oomKills: e.oomKills });
        else this.emit('empty');
      },
      {
        ...(intervalMs === undefined ? {} : { intervalMs }),
        onError: (err) => {
          if (this.listenerCount('error') > 0) this.emit('error', err);
        },
      },
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove({ force: true });
  }
}
