/**
 * `Engine`: docker's containers, images and volumes with persistent state, for every client (the
 * CLI, the daemon, SDK users who want named, persistent containers). A small facade over its
 * parts: create.ts and lifecycle.ts (container lifecycle), container-status.ts (state checks,
 * exit codes, status text), waiter.ts and container-watch.ts (waiting on what the kernel tells),
 * log-reader.ts, removal.ts, exec.ts and exec-instances.ts, images.ts, volume-ops.ts, and
 * exit-monitor.ts (the daemon's bookkeeping).
 *
 * A container is a record (`<store>/containers/<id>/record.json`) next to its writable layer
 * (`upper/`, `work/`, kept across starts) and its shim's bundle (`shim/`: log, state, exit status,
 * attach socket). Each start runs a new shim; nothing here needs the process that started it to stay.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { CgroupStats } from '../cgroup/driver.js';
import { InvalidStateError, NotFoundError } from '../errors.js';
import type { ContainerProcess } from '../runtime/process.js';
import { BundleFile, type HealthStatus, type ShimHealth } from '../runtime/bundle.js';
import { healthOf, waitForHealth } from './health.js';
import { AttachConnection, shimPath, type LogEntry } from '../runtime/shim.js';
import { SpareShims } from '../runtime/spare-shims.js';
import { getArchive, openContainerRoot, putArchive, statContainerPath } from './archive.js';
import type { PathStat } from './archive-read.js';
import type { ExtractOptions } from './archive-write.js';
import type { RootDir } from './in-root.js';
import { ContainerStore } from './container-store.js';
import { checkState, exitCodeOf, isRunning } from './container-status.js';
import { createContainer, type CreateRequest } from './create.js';
import { PreparedCgroups } from './prepared-cgroups.js';
import { changesOf, commitRecord } from './container-commit.js';
import type { Change } from './changes.js';
import type { CommitOptions } from '../build/commit-container.js';
import type { Image } from '../image/image.js';
import { repairNetworkingOf } from './networking.js';
import type { NetworkRepair } from '../network/repair.js';
import { cgroupParentsOf, pruneEmptyCgroups } from './cgroup-gc.js';
import { bundlePath, type EngineContext, type EngineEvent } from './engine-context.js';
import { execInContainer, type ExecOptions } from './exec.js';
import { ExecInstances } from './exec-instances.js';
import { ExitMonitor } from './exit-monitor.js';
import { startInForeground, type ForegroundOptions, type ForegroundRun } from './foreground.js';
import { EngineImages, type RemovedImages } from './images.js';
import * as lifecycle from './lifecycle.js';
import { connectNetwork, disconnectNetwork, renameContainer, type ConnectOptions } from './network-connect.js';
import { readLogs, type LogOptions } from './log-reader.js';
import { processStartTime } from './process-start-time.js';
import { reapDeadOwners, type Reaped } from './owner-reap.js';
import { thisProcess, type Owner } from './owners.js';
import type { ContainerRecord } from './records.js';
import { RemovalClaims } from './removal-claims.js';
import { autoRemove, pruneContainers, removeContainer } from './removal.js';
import { bundleOf, liveShim } from './shim-control.js';
import { createVolume, listVolumes, pruneVolumes, removeVolume, type VolumeInfo } from './volume-ops.js';
import { waitContainer, type WaitCondition, type WaitResult } from './waiter.js';

export { exitCodeOf, type CreateRequest, type EngineEvent, type WaitCondition };

/** Whether the record at `file` may still be `created` without a supervisor (an unreadable one may). */
async function startedNot(file: string): Promise<boolean> {
  let v: unknown;
  try {
    v = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    // gone, torn or unreadable: the store's own read says which
    return true;
  }
  const r = v as { state?: unknown; supervisor?: unknown } | null;
  return typeof r !== 'object' || r === null || (r.state === 'created' && r.supervisor === undefined);
}

export class Engine extends EventEmitter {
  readonly store: ContainerStore;
  readonly root: string;
  readonly images: EngineImages;
  /** docker's exec instances (create, start, inspect), for the daemon. */
  readonly execs = new ExecInstances();
  readonly #ctx: EngineContext;
  /** The last exit each container's 'die' was told for (id → finishedAt), so none is told twice. */
  readonly #died = new Map<string, string>();
  readonly #claims = new RemovalClaims();

  private constructor(store: ContainerStore, owner: Owner | undefined) {
    super();
    this.store = store;
    this.root = store.layout.root;
    this.#ctx = {
      store,
      root: this.root,
      claims: this.#claims,
      ...(owner ? { owner } : {}),
      emit: (action, r, extra = {}) => {
        const attributes = { ...(r.name ? { name: r.name } : {}), ...(r.image ? { image: r.image.ref } : {}), ...extra };
        this.emitEvent({ type: 'container', action, id: r.id, attributes, time: new Date() });
      },
      emitEvent: (e) => this.emitEvent(e),
      emitDie: (r) => {
        const key = r.finishedAt ?? '';
        if (this.#died.get(r.id) === key) return;
        this.#died.set(r.id, key);
        this.#ctx.emit('die', r, { exitCode: String(exitCodeOf(r)) });
      },
      warn: (what, e) => {
        const message = `${what}: ${e instanceof Error ? e.message : String(e)}`;
        if (this.listenerCount('warning') > 0) this.emit('warning', message, e);
        else process.emitWarning(message, 'NsboxWarning');
      },
    };
    this.images = new EngineImages(this.#ctx);
    this.on('event', (e: EngineEvent) => {
      if (e.type === 'container' && e.action === 'destroy') this.execs.dropContainer(e.id);
    });
  }

  /**
   * The store at `root` (default: NSBOX_ROOT, /var/lib/nsbox as root, else under XDG_DATA_HOME),
   * repaired of what a crash left (store.repair, and records a killed start left `created`).
   * `repair: false` skips store.repair, which reads every record: for a short-lived client.
   *
   * Every open also removes what processes that are gone owned (owner-reap.ts). The containers and
   * volumes this engine creates are this process's (label `nsbox.owner`): they go with it, at the
   * next open after it ends, however it ends. `owned: false` (the CLI, `nsbox serve`) makes them
   * outlive it, as docker's do.
   */
  static async open(opts: { root?: string; repair?: boolean; owned?: boolean } = {}): Promise<Engine> {
    const store = await ContainerStore.open({ ...(opts.root ? { root: opts.root } : {}), ...(opts.repair === false ? { repair: false } : {}) });
    const engine = new Engine(store, opts.owned === false ? undefined : thisProcess());
    await engine.#adoptOrphans();
    await engine.reapDeadOwners();
    return engine;
  }

  /** Removes the containers, networks and volumes of owners that are gone (done by every open). */
  reapDeadOwners(): Promise<Reaped> {
    return reapDeadOwners(this.#ctx);
  }

  /** Every event: `{ type, action, id, attributes, time }` (docker's container, image and volume events). */
  emitEvent(e: EngineEvent): void {
    this.emit('event', e);
  }

  /**
   * Records still `created` whose bundle has a live shim: the process that started them died before
   * it could say so (kill -9 mid `run -d`). The shim's files say what runs; the record follows.
   */
  async #adoptOrphans(): Promise<void> {
    // Only containers with a shim running are candidates: a stat each, no record read for the rest.
    const ids = (await readdir(this.store.layout.containersDir)).filter((id) => /^[0-9a-f]{64}$/.test(id));
    for (const id of ids) {
      const bundle = bundlePath(this.#ctx, id);
      if (!existsSync(join(bundle, 'shim.pid'))) continue;
      // Most have started long ago: a plain look at two fields spares them the record's schema (its
      // parse is most of an open with a few containers running); the update below checks again.
      if (!(await startedNot(this.store.recordFile(id)))) continue;
      const r = await this.store.get(id).catch((e: unknown) => {
        // Removed meanwhile.
        if (e instanceof NotFoundError) return undefined;
        throw e;
      });
      if (!r || r.state !== 'created' || r.supervisor) continue;
      const shimPid = liveShim(bundle);
      if (!shimPid || !existsSync(join(bundle, BundleFile.state))) continue;
      const start = await processStartTime(shimPid);
      await this.store.update(r.id, (x) => {
        if (x.state !== 'created' || x.supervisor) return x;
        x.state = 'running';
        x.startedAt ??= new Date().toISOString();
        x.supervisor = { kind: 'shim', pid: shimPid, bundle, ...(start !== undefined ? { pidStartTime: start } : {}) };
        return x;
      });
    }
  }

  create(req: CreateRequest): Promise<ContainerRecord> {
    return createContainer(this.#ctx, req);
  }

  get(ref: string): Promise<ContainerRecord> {
    return this.store.get(ref);
  }

  list(opts: { all?: boolean } = {}): Promise<ContainerRecord[]> {
    return this.store.list(opts);
  }

  /** The container's init (host pid) while it runs. */
  pidOf(r: ContainerRecord): number | undefined {
    return lifecycle.pidOf(r);
  }

  /** docker's State.Health (health.json of its shim); undefined without a healthcheck. */
  async health(ref: string): Promise<ShimHealth | undefined> {
    return healthOf(await this.store.get(ref));
  }

  /**
   * Resolves with State.Health once its status is in `until` (default ['healthy']), told by the
   * shim's events as it changes; rejects (InvalidStateError) when the container is not running,
   * stops first or has no healthcheck, or with the signal's reason.
   */
  async waitForHealth(ref: string, opts: { until?: HealthStatus[]; signal?: AbortSignal } = {}): Promise<ShimHealth> {
    return waitForHealth(await this.store.get(ref), opts);
  }

  /** The file of its json-file log. */
  logPath(r: ContainerRecord): string {
    return join(bundleOf(r) ?? bundlePath(this.#ctx, r.id), BundleFile.log);
  }

  /**
   * Starts the container under a new nsbox-shim, on its kept writable layer. `awaitAttach`: a
   * client attaches right after (docker run), so a run that ends first is kept for it.
   * `claimRemoval`: a --rm container is removed by this process the moment it exits (the daemon,
   * an attached CLI); its shim's exit command does it only when this process is gone.
   */
  start(ref: string, opts: lifecycle.StartOptions = {}): Promise<ContainerRecord> {
    return lifecycle.startContainer(this.#ctx, ref, opts);
  }

  /**
   * Starts the created container as a child of this process, for a caller that stays until it
   * exits and then removes it (a foreground `nsbox run --rm`; see foreground.ts). Undefined, with
   * nothing done, when it needs a shim (a healthcheck, a terminal, stdin, a restart policy).
   */
  startInForeground(ref: string, opts: ForegroundOptions): Promise<ForegroundRun | undefined> {
    return startInForeground(this.#ctx, ref, opts);
  }

  /** The stop signal (or `signal`), SIGKILL after `timeout` seconds (10); NotModifiedError when it is not running. */
  stop(ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<ContainerRecord> {
    return lifecycle.stopContainer(this.#ctx, ref, opts);
  }

  restart(ref: string, opts: { timeout?: number } = {}): Promise<ContainerRecord> {
    return lifecycle.restartContainer(this.#ctx, ref, opts);
  }

  /** A signal (default SIGKILL) to the container's init; InvalidStateError when it is not running. */
  kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    return lifecycle.killContainer(this.#ctx, ref, signal);
  }

  /** Freezes every process of the container (the cgroup freezer). */
  pause(ref: string): Promise<void> {
    return lifecycle.pauseContainer(this.#ctx, ref);
  }

  unpause(ref: string): Promise<void> {
    return lifecycle.unpauseContainer(this.#ctx, ref);
  }

  /** docker commit: the container's writable layer as a new image over its own (see container-commit.ts). */
  commit(ref: string, opts: CommitOptions & { pause?: boolean } = {}): Promise<Image> {
    return commitRecord(this.#ctx, ref, opts);
  }

  /** docker diff: what the container added (A), changed (C) and deleted (D) over its image. */
  changes(ref: string): Promise<Change[]> {
    return changesOf(this.#ctx, ref);
  }

  /**
   * Networking left by containers that are not running (a crash, an exit no engine watched): their
   * namespaces, veths, addresses, DNAT elements and DNS entries. `nsbox serve` runs it at start-up.
   */
  repairNetworking(): Promise<NetworkRepair | undefined> {
    return repairNetworkingOf(this.#ctx);
  }

  /** See lifecycle.restoreRestartPolicies (what dockerd does when it starts). */
  restoreRestartPolicies(): Promise<{ started: string[]; failed: Array<{ id: string; error: string }> }> {
    return lifecycle.restoreRestartPolicies(this.#ctx);
  }

  /**
   * Removes the container: its record, writable layer, bundle and cgroup. A running one is refused
   * (InvalidStateError, docker's words) unless `force`, which kills it first.
   */
  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return removeContainer(this.#ctx, ref, opts);
  }

  /**
   * The --rm removal of an exited container (`force` and `volumes`): one removed meanwhile is
   * done; a failure is also kept in the record, and a wait for the removal ends with it. `run`: the
   * startedAt of the run whose end asks for it (the shim's exit command): nothing once a later run
   * has started.
   */
  async autoRemove(ref: string, run?: string): Promise<void> {
    const r = await this.#ctx.store.get(ref);
    // A later run has started since the one whose end asked for this (docker's restart keeps a --rm container).
    if (run !== undefined && r.startedAt !== run) return;
    return autoRemove(this.#ctx, r.id);
  }

  /**
   * docker container prune: removes every container that is not running (`failed`: those it
   * could not), then the empty cgroups crashed processes left beneath nsbox's parents (`cgroups`).
   */
  async prune(): Promise<{ containers: string[]; failed: Array<{ id: string; error: string }>; cgroups: string[] }> {
    // Read before the records go: a removed container's own cgroup parent is still looked under.
    const parents = await cgroupParentsOf(this.#ctx);
    const out = await pruneContainers(this.#ctx);
    await repairNetworkingOf(this.#ctx).catch((e: unknown) => this.#ctx.warn('network repair', e));
    return { ...out, cgroups: await pruneEmptyCgroups(this.#ctx, parents) };
  }

  /**
   * Emits 'die' for containers that exit on their own (not through this engine's stop), the
   * moment the kernel tells (see ExitMonitor): for the daemon's /events. Returns a stop function.
   */
  watchExits(): () => void {
    const monitor = new ExitMonitor(this.#ctx);
    return () => {
      monitor.close();
      this.#claims.releaseAll();
    };
  }

  /**
   * Keeps a shim started ahead for this engine's next start (spare-shims.ts), for a long-lived
   * caller (the API server); resolves the function that stops doing so, whose promise is settled
   * once the idle spare has exited.
   */
  keepSpareShims(): () => Promise<void> {
    const spares = new SpareShims(shimPath);
    this.#ctx.spares = spares;
    spares.refill();
    return () => {
      if (this.#ctx.spares === spares) delete this.#ctx.spares;
      return spares.close();
    };
  }

  /**
   * Makes each created container's cgroup ahead of its start, when asked (`prepareStart`), for a
   * long-lived caller (the API server) that has idle time between a create and its start
   * (prepared-cgroups.ts); resolves the function that stops doing so, whose promise is settled
   * once the cgroups made for containers that never started are removed.
   */
  keepCgroupsAhead(): () => Promise<void> {
    const prepared = new PreparedCgroups(this.#ctx);
    this.#ctx.prepared = prepared;
    return () => {
      if (this.#ctx.prepared === prepared) delete this.#ctx.prepared;
      return prepared.close();
    };
  }

  /** The created container's cgroup (`r`: its record as create returned it), made now for its start (while keepCgroupsAhead holds; else nothing). */
  prepareStart(r: ContainerRecord): void {
    this.#ctx.prepared?.prepare(r);
  }

  /**
   * Until the container is not running (`not-running`, the default), has exited once more
   * (`next-exit`), or is removed (`removed`). Resolves with docker's exit code; `signal` gives up.
   */
  wait(ref: string, opts: { condition?: WaitCondition; signal?: AbortSignal } = {}): Promise<WaitResult> {
    return waitContainer(this.#ctx, ref, opts);
  }

  /**
   * The container's live output, stdin (when created with openStdin), resize and its exits. The
   * first client after a start also gets what was printed before it attached.
   */
  async attach(ref: string): Promise<AttachConnection> {
    // Only looked at: a record reconcile would correct (the container exited while its shim
    // waits for this client) is written back by whoever changes it next, not on docker run's path.
    const r = await this.store.peek(ref);
    const bundle = bundleOf(r) ?? bundlePath(this.#ctx, r.id);
    if (!liveShim(bundle, r.supervisor)) throw new InvalidStateError(`container ${r.id} is not running: start it to attach`);
    return AttachConnection.connect(bundle);
  }

  /**
   * `attach` to the shim in `bundle`, without reading the record: for a client that learnt of the
   * start from `start`'s `onShimStarted` (the record may not say running yet). A shim gone
   * meanwhile is an ENOENT or ECONNREFUSED.
   */
  attachShim(bundle: string): Promise<AttachConnection> {
    return AttachConnection.connect(bundle);
  }

  /** The terminal's size (the container gets SIGWINCH). */
  async resize(ref: string, cols: number, rows: number): Promise<void> {
    const conn = await this.attach(ref);
    conn.resize(cols, rows);
    conn.end();
  }

  /**
   * The json-file log's entries: the last `tail` (all when absent), those from `since`/until
   * `until` (unix seconds); with `follow`, new ones as they come until the container stops.
   */
  logs(ref: string, opts: LogOptions = {}): AsyncGenerator<LogEntry> {
    return readLogs(this.#ctx, ref, opts);
  }

  async stats(ref: string): Promise<CgroupStats> {
    const r = await this.get(ref);
    checkState('stats', r);
    return (await lifecycle.cgroupOfRecord(r)).stats();
  }

  /** A process in the running container (see exec.ts); `user` may be `root`. */
  exec(ref: string, argv: string[], opts: ExecOptions = {}): Promise<ContainerProcess> {
    return execInContainer(this.#ctx, ref, argv, opts);
  }

  /** The stat of a path in the container, running or not (docker's archive HEAD). */
  statPath(ref: string, path: string): Promise<PathStat> {
    return statContainerPath(this.#ctx, ref, path);
  }

  /** A path of the container as a tar, with its stat (docker's GET archive; `nsbox cp` from a container). */
  getArchive(ref: string, path: string): Promise<{ stat: PathStat; tar: Readable }> {
    return getArchive(this.#ctx, ref, path);
  }

  /** A tar extracted under a directory of the container (docker's PUT archive). */
  putArchive(ref: string, path: string, tar: AsyncIterable<Buffer>, opts: ExtractOptions = {}): Promise<void> {
    return putArchive(this.#ctx, ref, path, tar, opts);
  }

  /** The container's root, paths resolved inside it (lib/engine/copy.ts); close it after. */
  openRoot(ref: string): Promise<{ root: RootDir; record: ContainerRecord }> {
    return openContainerRoot(this.#ctx, ref);
  }

  /** docker image prune (see EngineImages.prune). */
  pruneImages(opts: { all?: boolean; forget?: boolean } = {}): Promise<{ removed: RemovedImages[]; spaceReclaimed: number }> {
    return this.images.prune(opts);
  }

  /** docker rmi (see EngineImages.remove). */
  removeImage(ref: string, opts: { force?: boolean; forget?: boolean } = {}): Promise<RemovedImages> {
    return this.images.remove(ref, opts);
  }

  /** docker volume ls: every volume, with the containers that use it. */
  volumes(): Promise<Array<VolumeInfo & { usedBy: string[] }>> {
    return listVolumes(this.#ctx);
  }

  /** docker volume create [NAME] [--label k=v]. */
  async createVolume(name?: string, opts: { labels?: Record<string, string> } = {}): Promise<VolumeInfo> {
    return createVolume(this.#ctx, name, opts);
  }

  /** docker volume rm: refused while a container uses it. */
  removeVolume(name: string): Promise<void> {
    return removeVolume(this.#ctx, name);
  }

  /** docker volume prune: the anonymous volumes (with `all`, every volume) no container uses. */
  pruneVolumes(opts: { all?: boolean } = {}): Promise<{ volumes: string[] }> {
    return pruneVolumes(this.#ctx, opts);
  }

  /** docker network connect: on the next start, and at once when it runs (network-connect.ts). */
  async connect(ref: string, network: string, opts: ConnectOptions = {}): Promise<ContainerRecord> {
    return (await connectNetwork(this.#ctx, ref, network, opts)).record;
  }

  /** docker rename (its DNS names too, while it runs). */
  rename(ref: string, name: string): Promise<ContainerRecord> {
    return renameContainer(this.#ctx, ref, name);
  }

  /** docker network disconnect. */
  disconnect(ref: string, network: string, opts: { force?: boolean } = {}): Promise<ContainerRecord> {
    return disconnectNetwork(this.#ctx, ref, network, opts);
  }
}

export { isRunning };
