/**
 * `Engine`: docker's container lifecycle over the store's records and `nsbox-shim`, for every
 * client (the CLI, the daemon, SDK users who want named, persistent containers). A container is a
 * record (`<store>/containers/<id>/record.json`) next to its writable layer (`upper/`, `work/`,
 * kept across starts) and its shim's bundle (`shim/`: log, state, exit status, attach socket).
 * Each start runs a new shim; nothing here needs the process that started it to stay.
 */
import { EventEmitter } from 'node:events';
import { existsSync, rmSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Cgroup } from '../cgroup/cgroup.js';
import type { CgroupStats } from '../cgroup/driver.js';
import { InvalidStateError, NotFoundError, NotModifiedError, NsboxError, ValidationError } from '../errors.js';
import { packagePath } from '../package-root.js';
import { Image } from '../image/image.js';
import { isDigest } from '../image/reference.js';
import { Container } from '../runtime/container.js';
import { resolveImage } from '../runtime/image-source.js';
import { ContainerOptionsSchema, validate, type ContainerOptions } from '../runtime/options.js';
import type { ContainerProcess } from '../runtime/process.js';
import { AttachConnection, readExit, type LogEntry } from '../runtime/shim.js';
import { signalNumber, type SignalName } from '../runtime/signals.js';
import { Store } from '../storage/index.js';
import { ContainerStore } from './container-store.js';
import { processStartTime } from './process-start-time.js';
import type { ContainerRecord } from './records.js';
import { parseRestartPolicy, type RestartPolicy } from './restart-policy.js';
import { copyUp } from './volume-copy-up.js';
import { Volumes, VolumeRequestSchema, type VolumeRequest, type VolumeUse } from './volumes.js';
import { alive, bundleOf, cgroupOf, cgroupPathsOf, containerPid, liveShim, removeCgroup, sleep, stopShim } from './shim-control.js';

export interface CreateRequest {
  /** Unique; generated (`adjective_surname`) when absent. */
  name?: string;
  /** What the container runs (no `stdio`: a detached container's stdio is its shim's). */
  options: ContainerOptions;
  /** docker's -i: a stdin that attach clients write to. */
  openStdin?: boolean;
  /** docker's --restart: no, on-failure[:N], always, unless-stopped. */
  restart?: string;
  /** docker's --rm: removed once it has exited (by its shim's exit command). */
  autoRemove?: boolean;
  /** docker's volumes (`-v NAME:/path`, `-v /path`); the image's VOLUMEs not covered get anonymous ones. */
  volumes?: VolumeRequest[];
}

export interface EngineEvent {
  type: 'container' | 'image';
  action: string;
  id: string;
  attributes: Record<string, string>;
  time: Date;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

const running = (r: ContainerRecord) => r.state === 'running' || r.state === 'paused';
const POLL_MS = 50;

/** bin/nsbox.js, for the shim's exit command. */
const binPath = () => packagePath('bin', 'nsbox.js');

/** docker's exit code of a container: its own, or 128 + the signal that ended it. */
export function exitCodeOf(r: { exitCode: number | null; signal: string | null }): number {
  if (r.exitCode !== null) return r.exitCode;
  if (!r.signal) return -1;
  try {
    return 128 + signalNumber(r.signal as SignalName);
  } catch {
    return 128;
  }
}

/** 'SIGTERM', 'TERM' or '15', as docker takes them. */
const toSignal = (s: string): number => signalNumber(/^\d+$/.test(s) ? Number(s) : s);

function restartText(p: RestartPolicy): string {
  return p.name === 'on-failure' && p.maximumRetryCount ? `on-failure:${p.maximumRetryCount}` : p.name;
}

export class Engine extends EventEmitter {
  readonly store: ContainerStore;
  readonly root: string;
  /** The last exit each container's 'die' was emitted for (id → finishedAt), so none is told twice. */
  #died = new Map<string, string>();

  private constructor(store: ContainerStore) {
    super();
    this.store = store;
    this.root = store.layout.root;
  }

  /** The store at `root` (default: NSBOX_ROOT, /var/lib/nsbox as root, else under XDG_DATA_HOME). */
  static async open(opts: { root?: string } = {}): Promise<Engine> {
    return new Engine(await ContainerStore.open(opts.root ? { root: opts.root } : {}));
  }

  #emit(action: string, r: { id: string; name?: string; image?: { ref: string } | undefined }, extra: Record<string, string> = {}): void {
    const attributes: Record<string, string> = { ...(r.name ? { name: r.name } : {}), ...(r.image ? { image: r.image.ref } : {}), ...extra };
    this.emit('event', { type: 'container', action, id: r.id, attributes, time: new Date() } satisfies EngineEvent);
  }

  /** Emits an image event (pull, tag, untag, delete) for listeners of 'event'. */
  emitImageEvent(action: string, ref: string, attributes: Record<string, string> = {}): void {
    this.emit('event', { type: 'image', action, id: ref, attributes: { name: ref, ...attributes }, time: new Date() } satisfies EngineEvent);
  }

  /**
   * A new container in state `created`: the options are checked and the image resolved now (pulled
   * when `options.pull` allows; `pull: 'never'` and no image: NotFoundError "No such image: …").
   */
  async create(req: CreateRequest): Promise<ContainerRecord> {
    const { stdio: _stdio, runRoot: _runRoot, id: _id, imageRoot: _imageRoot, ...options } = req.options;
    void _stdio;
    void _runRoot;
    void _id;
    void _imageRoot;
    const config = validate(ContainerOptionsSchema, options, 'container options');
    const restartPolicy = parseRestartPolicy(req.restart ?? 'no');
    if (req.autoRemove && restartPolicy.name !== 'no') throw new ValidationError('conflicting options: cannot both remove and restart a container (--rm and --restart)', 'restart');
    let image: { ref: string; digest: string } | undefined;
    let resolved: Awaited<ReturnType<typeof resolveImage>> | undefined;
    if (config.image !== undefined) {
      resolved = await resolveImage(config.image, config.pull, this.root);
      resolved.release?.();
      image = { ref: config.image, digest: resolved.digest };
    }
    // Volumes: those asked for, then the image's VOLUMEs no mount covers (anonymous, as docker's).
    const asked = (req.volumes ?? []).map((v) => validate(VolumeRequestSchema, v, 'volume'));
    const covered = new Set([...(options.mounts ?? []).map((m) => m.target), ...asked.map((v) => v.target)].map((t) => t.replace(/\/+$/, '')));
    const imageVolumes = Object.keys(resolved?.config.Volumes ?? {});
    for (const target of imageVolumes) if (!covered.has(target.replace(/\/+$/, ''))) asked.push({ target, readonly: false });
    const volumes = new Volumes(this.root);
    const used: VolumeUse[] = [];
    const binds: NonNullable<ContainerOptions['mounts']> = [];
    for (const v of asked) {
      const made = volumes.ensure(v.name);
      // docker's copy-up: an empty volume starts with what the image has at its mount point.
      if (resolved && !v.noCopy && volumes.isEmpty(made.name)) copyUp(resolved.layers, v.target, made.data);
      used.push({ name: made.name, target: v.target, anonymous: made.anonymous });
      binds.push({ type: 'bind', source: made.data, target: v.target, readonly: v.readonly, recursive: true });
    }
    let record: ContainerRecord;
    try {
      record = await this.store.create({
        ...(req.name ? { name: req.name } : {}),
        ...(image ? { image } : {}),
        ...(config.rootfs ? { rootfs: config.rootfs } : {}),
        command: config.command ?? [],
        options: { ...options, ...(image ? { pull: 'never' as const } : {}), ...(binds.length ? { mounts: [...(options.mounts ?? []), ...binds] } : {}) },
        restartPolicy,
        openStdin: req.openStdin ?? false,
        autoRemove: req.autoRemove ?? false,
        volumes: used,
      });
    } catch (e) {
      for (const v of used) if (v.anonymous) volumes.remove(v.name);
      throw e;
    }
    this.#emit('create', record);
    return record;
  }

  get(ref: string): Promise<ContainerRecord> {
    return this.store.get(ref).then((r) => this.#adopt(r));
  }

  async list(opts: { all?: boolean } = {}): Promise<ContainerRecord[]> {
    const all = await this.store.list({ all: true });
    const out: ContainerRecord[] = [];
    for (const r of all) {
      const fixed = await this.#adopt(r).catch(() => r);
      if (opts.all || running(fixed)) out.push(fixed);
    }
    return out;
  }

  /**
   * A record still `created` whose bundle has a live shim: the process that started it died before
   * it could say so (kill -9 mid `run -d`). The shim's files say what runs; the record follows.
   */
  async #adopt(r: ContainerRecord): Promise<ContainerRecord> {
    if (r.state !== 'created' || r.supervisor) return r;
    const bundle = this.#bundle(r.id);
    const shimPid = liveShim(bundle);
    if (!shimPid || !existsSync(join(bundle, 'state.json'))) return r;
    const start = await processStartTime(shimPid);
    return this.store.update(r.id, (x) => {
      if (x.state !== 'created' || x.supervisor) return x;
      x.state = 'running';
      x.startedAt ??= new Date().toISOString();
      x.supervisor = { kind: 'shim', pid: shimPid, bundle, ...(start !== undefined ? { pidStartTime: start } : {}) };
      return x;
    });
  }

  #bundle(id: string): string {
    return join(this.store.layout.container(id), 'shim');
  }

  /**
   * The record's options with its image named by the digest it was created from: its name may
   * since be untagged (`rmi -f`) or moved to a newer pull, and the writable layer belongs on these layers.
   */
  #optionsOf(r: ContainerRecord): ContainerOptions {
    return r.image ? { ...r.options, image: r.image.digest } : r.options;
  }

  /** The container's init (host pid) while it runs. */
  pidOf(r: ContainerRecord): number | undefined {
    if (!running(r)) return undefined;
    if (r.supervisor?.kind === 'process') return r.supervisor.pid;
    const bundle = bundleOf(r);
    return bundle ? containerPid(bundle) : undefined;
  }

  /**
   * Starts the container under a new nsbox-shim, on its kept writable layer. `awaitAttach`: a
   * client attaches right after (docker run), so a run that ends first is kept for it.
   */
  async start(ref: string, opts: { awaitAttach?: boolean } = {}): Promise<ContainerRecord> {
    const r = await this.get(ref);
    if (running(r)) throw new NotModifiedError(`container ${r.id} is already running`);
    const bundle = this.#bundle(r.id);
    // An earlier shim waiting for its attach client, or a container its killed shim left behind.
    if (liveShim(bundle)) await stopShim(bundle, 0);
    await removeCgroup(bundle);
    const exitCommand = r.autoRemove ? ['/usr/bin/env', `NSBOX_ROOT=${this.root}`, process.execPath, binPath(), 'rm', '-f', '-v', r.id] : undefined;
    let started: Awaited<ReturnType<Container['startDetached']>>;
    let c: Container | undefined;
    try {
      c = await Container.create({
        ...this.#optionsOf(r),
        id: r.id,
        runRoot: this.store.layout.containersDir,
        imageRoot: this.root,
        tty: r.options.tty ?? false,
        stdio: 'ignore',
      });
      started = await c.startDetached({
        restart: restartText(r.restartPolicy) as never,
        openStdin: r.openStdin,
        ...(opts.awaitAttach ? { awaitAttach: 10 } : {}),
        ...(exitCommand ? { exitCommand } : {}),
      });
    } catch (e) {
      const code = e instanceof NsboxError && e.syscall === 'execve' ? (e.code === 'ENOENT' ? 127 : 126) : 125;
      // docker removes an auto-remove container whose start failed (its `run --rm` waits for that).
      if (r.autoRemove) await this.remove(r.id, { force: true, volumes: true }).catch(() => {});
      else {
        await this.store.update(r.id, (x) => {
          x.exitCode = code;
          x.signal = null;
          x.error = (e as Error).message;
        }).catch(() => {});
      }
      throw e;
    }
    const shimStart = await processStartTime(started.shimPid);
    const record = await this.store.update(r.id, (x) => {
      x.state = 'running';
      x.startedAt = new Date().toISOString();
      x.exitCode = null;
      x.signal = null;
      x.oomKilled = false;
      x.manuallyStopped = false;
      delete x.error;
      x.command = c!.config.command ?? [];
      x.supervisor = { kind: 'shim', pid: started.shimPid, bundle: started.bundle, ...(shimStart !== undefined ? { pidStartTime: shimStart } : {}) };
    });
    this.#emit('start', record);
    return record;
  }

  /** The stop signal (or `signal`), SIGKILL after `timeout` seconds (10); NotModifiedError when it is not running. */
  async stop(ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<ContainerRecord> {
    const r = await this.get(ref);
    if (!running(r)) throw new NotModifiedError(`container ${r.id} is not running`);
    await this.store.update(r.id, (x) => {
      x.manuallyStopped = true;
    });
    await this.#stopRunning(r, opts.timeout ?? 10, opts.signal);
    // An auto-remove container may be gone already: its shim's exit command removed it.
    const after = await this.get(r.id).catch((e: unknown) => {
      if (e instanceof NotFoundError) return { ...r, state: 'exited' as const, finishedAt: new Date().toISOString() };
      throw e;
    });
    this.#emitDie(after);
    this.#emit('stop', after);
    return after;
  }

  #emitDie(r: ContainerRecord): void {
    const key = r.finishedAt ?? '';
    if (this.#died.get(r.id) === key) return;
    this.#died.set(r.id, key);
    this.#emit('die', r, { exitCode: String(exitCodeOf(r)) });
  }

  /**
   * Emits 'die' for containers that exit on their own (not through this engine's stop), by
   * looking at the running ones every `intervalMs`: for the daemon's /events. Returns a stop
   * function; the timer does not keep the process alive.
   */
  watchExits({ intervalMs = 250 }: { intervalMs?: number } = {}): () => void {
    const seen = new Set<string>();
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        const all = await this.store.list({ all: true });
        for (const r of all) {
          if (running(r)) seen.add(r.id);
          else if (seen.delete(r.id) && (r.state === 'exited' || r.state === 'dead')) this.#emitDie(r);
        }
        for (const id of seen) if (!all.some((r) => r.id === id)) seen.delete(id);
      } catch {
        // the next tick tries again
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void tick(), intervalMs);
    timer.unref();
    void tick();
    return () => clearInterval(timer);
  }

  async #stopRunning(r: ContainerRecord, timeout: number, signal?: string): Promise<void> {
    if (r.state === 'paused') await this.#thaw(r);
    const bundle = bundleOf(r);
    if (!bundle) {
      // Run in the foreground of another process (the SDK's, or an older CLI's): signal it directly.
      const sup = r.supervisor;
      if (sup?.kind === 'process' && (await processStartTime(sup.pid)) === sup.pidStartTime) {
        process.kill(sup.pid, toSignal(signal ?? 'SIGTERM'));
        const deadline = Date.now() + timeout * 1000;
        while (Date.now() < deadline && alive(sup.pid)) await sleep(POLL_MS);
        if (alive(sup.pid)) process.kill(sup.pid, 'SIGKILL');
      }
      return;
    }
    if (signal) {
      const pid = containerPid(bundle);
      if (pid) process.kill(pid, toSignal(signal));
    }
    await stopShim(bundle, timeout);
  }

  /**
   * What dockerd does when it starts: starts again the containers whose restart policy says so
   * but that are not running because their shim is gone (the host rebooted, or the shim was
   * killed): `always` ones, and `unless-stopped` ones not stopped with `stop`. A container whose
   * shim lives (in a restart backoff) is its shim's to restart. Returns the ids started; one that
   * fails to start is reported in `failed` and the rest go on.
   */
  async restoreRestartPolicies(): Promise<{ started: string[]; failed: Array<{ id: string; error: string }> }> {
    const out = { started: [] as string[], failed: [] as Array<{ id: string; error: string }> };
    for (const r of await this.list({ all: true })) {
      const policy = r.restartPolicy.name;
      if (running(r) || r.autoRemove) continue;
      if (policy !== 'always' && !(policy === 'unless-stopped' && !r.manuallyStopped)) continue;
      if (liveShim(this.#bundle(r.id))) continue;
      await this.start(r.id).then(
        () => out.started.push(r.id),
        (e: unknown) => out.failed.push({ id: r.id, error: (e as Error).message }),
      );
    }
    return out;
  }

  async restart(ref: string, opts: { timeout?: number } = {}): Promise<ContainerRecord> {
    const r = await this.get(ref);
    if (running(r)) await this.#stopRunning(r, opts.timeout ?? 10);
    const record = await this.start(r.id);
    this.#emit('restart', record);
    return record;
  }

  /** A signal (default SIGKILL) to the container's init; InvalidStateError when it is not running. */
  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const r = await this.get(ref);
    const pid = this.pidOf(r);
    if (!pid) throw new InvalidStateError(`Cannot kill container: ${r.id}: Container ${r.id} is not running`);
    const signo = toSignal(signal);
    // A frozen process cannot die: thaw a paused container for SIGKILL.
    if (r.state === 'paused' && signo === 9) await this.#thaw(r);
    process.kill(pid, signo);
    this.#emit('kill', r, { signal: String(signo) });
  }

  async #cgroup(r: ContainerRecord) {
    const bundle = bundleOf(r);
    const cg = bundle ? await cgroupOf(bundle) : undefined;
    if (!cg) throw new InvalidStateError(`container ${r.id} has no cgroup`);
    return cg;
  }

  async #thaw(r: ContainerRecord): Promise<void> {
    await (await this.#cgroup(r)).thaw();
    await this.store.update(r.id, (x) => {
      if (x.state === 'paused') x.state = 'running';
    });
  }

  /** Freezes every process of the container (the cgroup freezer). */
  async pause(ref: string): Promise<void> {
    const r = await this.get(ref);
    if (r.state === 'paused') throw new InvalidStateError(`Container ${r.id} is already paused`);
    if (r.state !== 'running') throw new InvalidStateError(`Container ${r.id} is not running`);
    await (await this.#cgroup(r)).freeze();
    await this.store.update(r.id, (x) => {
      x.state = 'paused';
    });
    this.#emit('pause', r);
  }

  async unpause(ref: string): Promise<void> {
    const r = await this.get(ref);
    if (r.state !== 'paused') throw new InvalidStateError(`Container ${r.id} is not paused`);
    await this.#thaw(r);
    this.#emit('unpause', r);
  }

  /**
   * Removes the container: its record, writable layer, bundle and cgroup. A running one is refused
   * (InvalidStateError, docker's words) unless `force`, which kills it first.
   */
  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const r = await this.get(ref);
    if (running(r) && !opts.force) {
      throw new InvalidStateError(`You cannot remove a ${r.state} container ${r.id}. Stop the container before attempting removal or force remove`);
    }
    if (running(r)) await this.#stopRunning(r, 0, 'SIGKILL').catch(() => {});
    const bundles = new Set([this.#bundle(r.id), ...(bundleOf(r) ? [bundleOf(r)!] : [])]);
    for (const b of bundles) {
      if (liveShim(b)) await stopShim(b, 0);
      await removeCgroup(b);
    }
    // A start cut short (kill -9) may have made the cgroup before writing cgroup.json: find it by name.
    const byName = await Cgroup.open(r.id, r.options.cgroupParent !== undefined ? { parent: r.options.cgroupParent } : {}).catch(() => undefined);
    if (byName) {
      await byName.thaw().catch(() => {});
      await byName.remove({ force: true });
    }
    await this.store.remove(r.id, { force: true });
    // Containers of an earlier version kept their bundle under the run root, outside the store.
    for (const b of bundles) if (!b.startsWith(`${this.store.layout.container(r.id)}/`)) rmSync(dirname(b), { recursive: true, force: true });
    this.#emit('destroy', r);
    // rm -v: its anonymous volumes (named ones stay, as docker's).
    if (opts.volumes && r.volumes.some((v) => v.anonymous)) {
      const inUse = await this.#volumesInUse();
      const volumes = new Volumes(this.root);
      for (const v of r.volumes) if (v.anonymous && !inUse.has(v.name)) volumes.remove(v.name);
    }
  }

  async #volumesInUse(): Promise<Set<string>> {
    return new Set((await this.store.list({ all: true })).flatMap((x) => x.volumes.map((v) => v.name)));
  }

  /** docker volume ls: every volume, with the containers that use it. */
  async volumes(): Promise<Array<{ name: string; anonymous: boolean; created: string; mountpoint: string; usedBy: string[] }>> {
    const records = await this.store.list({ all: true });
    const volumes = new Volumes(this.root);
    return volumes.list().flatMap((name) => {
      const info = volumes.info(name);
      return info ? [{ ...info, usedBy: records.filter((r) => r.volumes.some((v) => v.name === name)).map((r) => r.id) }] : [];
    });
  }

  /** docker volume create [NAME]: made when absent (then anonymous without a name), as docker's. */
  async createVolume(name?: string): Promise<{ name: string; anonymous: boolean; created: string; mountpoint: string }> {
    if (name !== undefined) validate(VolumeRequestSchema, { name, target: '/' }, 'volume');
    const volumes = new Volumes(this.root);
    return volumes.info(volumes.ensure(name).name)!;
  }

  /** docker volume rm: refused while a container (running or not) uses it, as docker refuses it (also with -f). */
  async removeVolume(name: string): Promise<void> {
    const volumes = new Volumes(this.root);
    if (!volumes.info(name)) throw new NotFoundError(`get ${name}: no such volume`);
    const users = (await this.store.list({ all: true })).filter((r) => r.volumes.some((v) => v.name === name));
    if (users.length) throw new InvalidStateError(`remove ${name}: volume is in use - [${users.map((r) => r.id).join(', ')}]`);
    volumes.remove(name);
  }

  /** docker volume prune: the anonymous volumes (with `all`, every volume) no container uses. */
  async pruneVolumes(opts: { all?: boolean } = {}): Promise<{ volumes: string[] }> {
    const inUse = await this.#volumesInUse();
    const volumes = new Volumes(this.root);
    const removed: string[] = [];
    for (const name of volumes.list()) {
      if (inUse.has(name) || (!opts.all && !volumes.isAnonymous(name))) continue;
      volumes.remove(name);
      removed.push(name);
    }
    return { volumes: removed };
  }

  /**
   * Until the container is not running (`not-running`, the default), has exited once more
   * (`next-exit`), or is removed (`removed`). Resolves with docker's exit code; `signal` gives up.
   */
  async wait(ref: string, opts: { condition?: WaitCondition; signal?: AbortSignal } = {}): Promise<{ exitCode: number; error?: string }> {
    const condition = opts.condition ?? 'not-running';
    // Taken before anything is awaited: an exit after this call is the next one, even when it
    // comes before the record is first read (a start racing this wait).
    const called = Date.now();
    let r = await this.get(ref);
    const id = r.id;
    // One spelling for both sources (exit.json has nanoseconds, the record milliseconds).
    const exitTime = (x: ContainerRecord) => {
      const b = bundleOf(x);
      const t = (b && readExit(b)?.finishedAt) || x.finishedAt;
      return t ? new Date(t).toISOString() : undefined;
    };
    const firstExit = exitTime(r);
    const result = (x: ContainerRecord) => {
      const b = bundleOf(x);
      const e = b ? readExit(b) : undefined;
      const status = running(x) && e ? { exitCode: e.exitCode, signal: e.signal } : x;
      // A container that never ran has nothing to report: 0, as docker answers.
      const exitCode = x.state === 'created' && x.exitCode === null ? 0 : exitCodeOf(status);
      return { exitCode, ...(x.error ? { error: x.error } : {}) };
    };
    for (;;) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      if (condition === 'not-running' && !running(r)) return result(r);
      const last = exitTime(r);
      if (condition === 'next-exit' && last !== undefined && (last !== firstExit || Date.parse(last) >= called)) return result(r);
      await sleep(POLL_MS);
      try {
        r = await this.store.get(id);
      } catch (e) {
        if (e instanceof NotFoundError) return result(r);
        throw e;
      }
    }
  }

  /**
   * The container's live output, stdin (when created with openStdin), resize and its exits. The
   * first client after a start also gets what was printed before it attached.
   */
  async attach(ref: string): Promise<AttachConnection> {
    const r = await this.get(ref);
    const bundle = bundleOf(r) ?? this.#bundle(r.id);
    if (!liveShim(bundle)) throw new InvalidStateError(`container ${r.id} is not running: start it to attach`);
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
  async *logs(ref: string, opts: { follow?: boolean; tail?: number; since?: number; until?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogEntry> {
    const r = await this.get(ref);
    const file = join(bundleOf(r) ?? this.#bundle(r.id), 'container.log');
    const keep = (e: LogEntry) => {
      const t = Date.parse(e.time) / 1000;
      return (opts.since === undefined || t >= opts.since) && (opts.until === undefined || t <= opts.until);
    };
    let offset = 0;
    let partial = '';
    const readNew = async (): Promise<LogEntry[]> => {
      let size: number;
      try {
        size = (await stat(file)).size;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
      if (size < offset) offset = 0;
      if (size === offset) return [];
      const fh = await open(file, 'r');
      try {
        const buf = Buffer.alloc(size - offset);
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        offset += bytesRead;
        const lines = (partial + buf.subarray(0, bytesRead).toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        return lines.filter((l) => l !== '').map((l) => JSON.parse(l) as LogEntry).filter(keep);
      } finally {
        await fh.close();
      }
    };
    let first = await readNew();
    if (opts.tail !== undefined && opts.tail >= 0) first = opts.tail === 0 ? [] : first.slice(-opts.tail);
    yield* first;
    if (!opts.follow) return;
    for (;;) {
      if (opts.signal?.aborted) return;
      const now = await this.store.get(r.id).catch(() => undefined);
      const more = await readNew();
      yield* more;
      if (!now || !running(now)) return;
      await sleep(200);
    }
  }

  async stats(ref: string): Promise<CgroupStats> {
    const r = await this.get(ref);
    if (!running(r)) throw new InvalidStateError(`container ${r.id} is not running`);
    return (await this.#cgroup(r)).stats();
  }

  /**
   * Starts a process in the running container, with its namespaces, cgroup, user and security
   * (`privileged`: every capability, no seccomp, no no_new_privs, as docker's exec --privileged); the
   * process is this caller's child (pipes or a terminal), as docker's exec belongs to the daemon.
   */
  async exec(
    ref: string,
    argv: string[],
    opts: { env?: string[]; cwd?: string; user?: string; tty?: boolean | { cols: number; rows: number }; detach?: boolean; privileged?: boolean } = {},
  ): Promise<ContainerProcess> {
    const r = await this.get(ref);
    if (r.state === 'paused') throw new InvalidStateError(`Container ${r.id} is paused, unpause the container before exec`);
    const pid = this.pidOf(r);
    if (!pid) throw new InvalidStateError(`Container ${r.id} is not running`);
    const bundle = bundleOf(r);
    const c = await Container.join({ ...this.#optionsOf(r), imageRoot: this.root }, { id: r.id, pid, ...(bundle ? { cgroupPaths: cgroupPathsOf(bundle) } : {}) });
    try {
      const proc = await c.exec(argv, {
        ...(opts.env?.length ? { env: opts.env } : {}),
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
        ...(opts.user ? { user: opts.user } : {}),
        tty: opts.tty ?? false,
        stdio: 'pipe',
        detach: opts.detach ?? false,
        privileged: opts.privileged ?? false,
      });
      void proc.wait().catch(() => undefined).then(() => c.remove());
      this.#emit('exec_start', r, { execID: String(proc.pid) });
      return proc;
    } catch (e) {
      await c.remove();
      throw e;
    }
  }

  /** docker container prune: removes every container that is not running. */
  async prune(): Promise<{ containers: string[] }> {
    const removed: string[] = [];
    for (const r of await this.list({ all: true })) {
      if (running(r)) continue;
      await this.remove(r.id).then(() => removed.push(r.id)).catch(() => {});
    }
    return { containers: removed };
  }

  /**
   * docker image prune: removes the dangling images (no name), or with `all` every image, that no
   * container record uses. Returns, image by image, what went (docker's `Untagged` and `Deleted`:
   * the image id, then the blobs and layers no other image shares) and the sizes of the images.
   */
  async pruneImages(opts: { all?: boolean } = {}): Promise<{ removed: Array<{ untagged: string[]; deleted: string[] }>; spaceReclaimed: number }> {
    const used = new Set((await this.list({ all: true })).map((r) => r.image?.digest).filter((d): d is string => d !== undefined));
    const out = { removed: [] as Array<{ untagged: string[]; deleted: string[] }>, spaceReclaimed: 0 };
    for (const image of await Image.list({ root: this.root })) {
      if (used.has(image.digest) || (!opts.all && image.names.length > 0)) continue;
      const r = this.#emitRemoved(await Image.remove(image.digest, { root: this.root }));
      // r.deleted starts with the manifest; docker names the image by its id.
      out.removed.push({ untagged: r.untagged, deleted: [...new Set([image.id, ...r.deleted.slice(1)])] });
      out.spaceReclaimed += image.size;
    }
    return out;
  }

  /**
   * Removes an image name, or the image with its names. An image a container record uses (running
   * or not) is never removed, since its layers are that container's lower dirs: without `force`
   * that is refused; with it its names go and the image stays, dangling (`<none>`), as docker's
   * `rmi -f NAME` leaves it, until it is removed after its last container. By id, `force` is
   * refused too while a container runs it (docker: "cannot be forced").
   */
  async removeImage(ref: string, opts: { force?: boolean } = {}): Promise<{ untagged: string[]; deleted: string[] }> {
    const { image, byName } = await this.#findImage(ref);
    // One of several names: only that name goes, whoever uses the image.
    if (byName && image.names.length > 1) return this.#emitRemoved(await Image.remove(ref, { root: this.root }));
    const users = (await this.list({ all: true })).filter((r) => r.image?.digest === image.digest);
    const user = users.find(running) ?? users[0];
    if (user && !opts.force) {
      throw new InvalidStateError(
        `conflict: unable to remove image ${ref}: image is in use by container ${user.id.slice(0, 12)} (${user.state}): remove the container first, or use -f`,
      );
    }
    if (user && !byName && running(user)) {
      throw new InvalidStateError(`conflict: unable to delete ${ref} (cannot be forced) - image is being used by running container ${user.id.slice(0, 12)}`);
    }
    if (user) {
      // By id with only stopped containers docker deletes the image, their layers kept by the
      // graph driver's own references; here nothing but image records keeps layers, so the image
      // stays dangling, as it does by name. Already dangling, there is nothing to do: say why.
      if (image.names.length === 0) {
        throw new InvalidStateError(`conflict: unable to delete ${ref} - image is being used by stopped container ${user.id.slice(0, 12)}: remove the container first`);
      }
      const untagged = await new Store({ root: this.root }).images.remove(image.digest, { namesOnly: true });
      return this.#emitRemoved({ untagged, deleted: [] });
    }
    return this.#emitRemoved(await Image.remove(byName ? ref : image.digest, { root: this.root, ...(opts.force ? { force: true } : {}) }));
  }

  #emitRemoved(result: { untagged: string[]; deleted: string[] }): { untagged: string[]; deleted: string[] } {
    for (const u of result.untagged) this.emitImageEvent('untag', u);
    if (result.deleted.length) this.emitImageEvent('delete', result.deleted[0]!);
    return result;
  }

  /** An image by name, digest, or id (the config's digest) or a unique prefix of either, as `images` shows them. */
  async #findImage(ref: string): Promise<{ image: Image; byName: boolean }> {
    try {
      return { image: await Image.get(ref, { root: this.root }), byName: !isDigest(ref) && !ref.includes('@') };
    } catch (e) {
      // A 64-hex id is no valid name: a ValidationError, not a NotFoundError.
      const hex = /^(?:sha256:)?([0-9a-f]{1,64})$/.exec(ref)?.[1];
      if (!hex || !(e instanceof NotFoundError || e instanceof ValidationError)) throw e;
      const hits = (await Image.list({ root: this.root })).filter((i) => [i.id, i.digest].some((d) => d.slice('sha256:'.length).startsWith(hex)));
      if (hits.length === 0) throw new NotFoundError(`No such image: ${ref}`, { code: 'ENOENT' });
      // Two manifests of one config (a pull after a load) share an id: only their digests tell them apart.
      if (hits.length > 1) throw new ValidationError(`${ref} names ${hits.length} images (${hits.map((i) => i.digest).join(', ')}): give more of a digest`, 'image');
      return { image: hits[0]!, byName: false };
    }
  }
}
