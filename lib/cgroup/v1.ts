import path from 'node:path';
import { NotFoundError, NsboxError, reportCleanupError } from '../errors.js';
import { exists, isCode, mkdirLevels, parsePids, readOptional, rmdirNsboxParents, rmdirTree, walkDeepestFirst, writeValue } from './cgroupfs.js';
import { statsOf, type CgroupDriver, type CgroupEvent, type CgroupPlacement, type CgroupStats, type KillOptions, type WatchOptions } from './driver.js';
import { killByFreezing } from './kill.js';
import type { ParsedResources } from './resources.js';
import { setCpuset } from './shared/cpuset.js';
import { setHugetlb } from './shared/hugetlb.js';
import { pidsStats, setPids } from './shared/pids.js';
import { blkioStatsV1, setBlkioV1 } from './v1/blkio.js';
import { cpuStatsV1, setCpuV1 } from './v1/cpu.js';
import { initCpusetV1 } from './v1/cpuset.js';
import { frozenV1, setFrozenV1 } from './v1/freezer.js';
import { memoryStatsV1, setMemoryV1 } from './v1/memory.js';
import { CgroupV2Driver } from './v2.js';
import { cpuStatsV2, needsCpu, setCpuV2 } from './v2/cpu.js';
import { ioStatsV2, setIoV2 } from './v2/io.js';
import { memoryStatsV2, setMemoryV2 } from './v2/memory.js';
import { hasKillFile, watchEmptyV2, watchOomV2 } from './v2/core.js';
import { watchOrPoll } from './watch.js';

/** The v1 controllers nsbox places its processes in, where mounted. */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio', 'freezer', 'devices', 'hugetlb'] as const;

export interface V1Hierarchy {
  /** The controllers mounted together in this hierarchy (e.g. ['cpu', 'cpuacct']). */
  controllers: string[];
  mountpoint: string;
  /** The cgroup's directory in this hierarchy. */
  dir: string;
}

export interface V1DriverOptions {
  hierarchies: V1Hierarchy[];
  /** On hybrid hosts: the cgroup's twin in the unified hierarchy (for cgroup.kill, cgroup.events, and controllers bound to v2). */
  unified?: CgroupV2Driver;
}

/**
 * A cgroup spread over cgroup v1 hierarchies, one directory per mounted hierarchy; on hybrid hosts
 * also a directory in the unified hierarchy, which gives it atomic kill and inotify "empty" events.
 */
export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;
  readonly hierarchies: readonly V1Hierarchy[];
  #unified: CgroupV2Driver | undefined;
  readonly #by = new Map<string, string>();

  constructor(options: V1DriverOptions) {
    if (options.hierarchies.length === 0) throw new NotFoundError('no cgroup v1 hierarchy is mounted');
    this.hierarchies = options.hierarchies;
    this.#unified = options.unified;
    for (const h of this.hierarchies) for (const c of h.controllers) this.#by.set(c, h.dir);
  }

  /** The unified twin, while it is in use (dropped when the unified hierarchy is not writable). */
  get unified(): CgroupV2Driver | undefined {
    return this.#unified;
  }

  get paths(): Record<string, string> {
    const out: Record<string, string> = Object.fromEntries(this.#by);
    if (this.unified) out.unified = this.unified.dir;
    return out;
  }

  /** The directory of `controller`'s hierarchy, if mounted as v1. */
  dirOf(controller: string): string | undefined {
    return this.#by.get(controller);
  }

  async create(): Promise<void> {
    const done: string[] = [];
    // The hierarchies side by side: one after the other, each mkdir's hop through the thread pool
    // added up (20–35 ms of a quick `run --rm` on a loaded host).
    const made = await Promise.allSettled([
      ...this.hierarchies.map(async (h) => {
        const created = await mkdirLevels(h.mountpoint, h.dir);
        done.push(h.dir);
        if (h.controllers.includes('cpuset')) await initCpusetV1(h.mountpoint, h.dir, created);
      }),
      // The twin is a bonus (atomic kill, inotify 'empty'): a read-only or foreign-owned unified
      // mount, as some containers get, drops it rather than failing.
      (async () => {
        try {
          await this.unified?.create();
        } catch (err) {
          if (!isCode(err, 'EROFS', 'EACCES', 'EPERM')) throw err;
          this.#unified = undefined;
        }
      })(),
    ]);
    const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(done.map((d) => rmdirTree(d).catch(reportCleanupError(`cgroup ${d}: removing it after a failed create`))));
      if (made.at(-1)!.status === 'fulfilled' && this.unified) await this.unified.remove().catch(reportCleanupError('cgroup: removing the unified twin after a failed create'));
      throw failed.reason;
    }
  }

  async exists(): Promise<boolean> {
    for (const h of this.hierarchies) if (await exists(h.dir)) return true;
    return this.unified ? this.unified.exists() : false;
  }

  async #unifiedControllers(): Promise<Set<string>> {
    if (!this.unified) return new Set<string>();
    // A twin that is gone (removed with an earlier try, or never made on a read-only mount) drives nothing.
    return this.unified.controllers().catch((e: unknown) => {
      if (e instanceof NotFoundError) return new Set<string>();
      throw e;
    });
  }

  #missing(controller: string): NsboxError {
    return new NsboxError(`the ${controller} controller is not mounted (neither as cgroup v1 nor in the unified hierarchy)`, { code: 'ENOTSUP' });
  }

  async set(r: ParsedResources): Promise<void> {
    const v2 = await this.#unifiedControllers();
    const twin = this.unified?.dir ?? '';
    // Each controller is driven where it is mounted: its v1 hierarchy, else the unified twin.
    const apply = async (wanted: boolean, v1Name: string, v2Name: string, v1Set: (dir: string) => Promise<void>, v2Set: (dir: string) => Promise<void>) => {
      if (!wanted) return;
      const dir = this.#by.get(v1Name);
      if (dir !== undefined) await v1Set(dir);
      else if (v2.has(v2Name)) await v2Set(twin);
      else throw this.#missing(v1Name);
    };
    await apply(r.cpuset !== undefined, 'cpuset', 'cpuset', (d) => setCpuset(d, r), (d) => setCpuset(d, r));
    await apply(r.memory !== undefined || r.memorySwap !== undefined, 'memory', 'memory', (d) => setMemoryV1(d, r), (d) => setMemoryV2(d, r));
    await apply(needsCpu(r), 'cpu', 'cpu', (d) => setCpuV1(d, r), (d) => setCpuV2(d, r));
    await apply(r.pids !== undefined, 'pids', 'pids', (d) => setPids(d, r), (d) => setPids(d, r));
    await apply(r.blkio !== undefined, 'blkio', 'io', (d) => setBlkioV1(d, r), (d) => setIoV2(d, r));
    await apply(r.hugetlb !== undefined, 'hugetlb', 'hugetlb', (d) => setHugetlb(d, r, false), (d) => setHugetlb(d, r, true));
  }

  async stats(): Promise<CgroupStats> {
    const v2 = await this.#unifiedControllers();
    const twin = this.unified?.dir ?? '';
    const memDir = this.#by.get('memory');
    const pidsDir = this.#by.get('pids');
    const blkioDir = this.#by.get('blkio');
    const cpuacct = this.#by.get('cpuacct');
    const [memory, cpu, pids, io] = await Promise.all([
      memDir ? memoryStatsV1(memDir) : v2.has('memory') ? memoryStatsV2(twin) : undefined,
      cpuacct || this.#by.get('cpu') ? cpuStatsV1(cpuacct, this.#by.get('cpu')) : this.unified ? cpuStatsV2(twin) : undefined,
      pidsDir ? pidsStats(pidsDir) : v2.has('pids') ? pidsStats(twin) : undefined,
      blkioDir ? blkioStatsV1(blkioDir) : v2.has('io') ? ioStatsV2(twin) : undefined,
    ]);
    return statsOf({ memory, cpu, pids, io });
  }

  async freeze(): Promise<void> {
    const dir = this.#by.get('freezer');
    if (dir !== undefined) return setFrozenV1(dir, true);
    if (this.unified) return this.unified.freeze();
    throw this.#missing('freezer');
  }

  async thaw(): Promise<void> {
    const dir = this.#by.get('freezer');
    if (dir !== undefined) return setFrozenV1(dir, false);
    if (this.unified) return this.unified.thaw();
    throw this.#missing('freezer');
  }

  async frozen(): Promise<boolean> {
    const dir = this.#by.get('freezer');
    if (dir !== undefined) return frozenV1(dir);
    return this.unified ? this.unified.frozen() : false;
  }

  /** Pids in every directory and sub-cgroup of every hierarchy. */
  async #allProcs(): Promise<number[]> {
    const dirs = this.hierarchies.map((h) => h.dir);
    if (this.unified) dirs.push(this.unified.dir);
    const lists = await Promise.all(
      dirs.map(async (d) => Promise.all((await walkDeepestFirst(d)).map((sub) => readOptional(path.join(sub, 'cgroup.procs'))))),
    );
    return [...new Set(lists.flat().flatMap(parsePids))].sort((a, b) => a - b);
  }

  async kill(options: KillOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    // The unified twin's cgroup.kill takes everything placed there in one step; the freezer loop
    // then catches any process that was put only into the v1 hierarchies.
    // No waiting there: tasks the v1 freezer holds die only once thawed, which the loop below does.
    if (this.unified && (await hasKillFile(this.unified.dir))) {
      await writeValue(path.join(this.unified.dir, 'cgroup.kill'), 1).catch((err: unknown) => {
        // The twin gone (ENOENT, ENODEV) leaves the freezer loop below to do it all; anything else is told.
        if (!isCode(err, 'ENOENT', 'ENODEV')) process.emitWarning(`cgroup ${this.unified!.dir}: cgroup.kill: ${(err as Error).message}`, { code: 'NSBOX_CGROUP_KILL' });
      });
    }
    const freezer = this.#by.get('freezer');
    // A freezer cgroup removed meanwhile (the container's own run removing it as this kill goes)
    // holds nothing: there is nothing to freeze or thaw.
    const gone = (err: unknown) => {
      if (!isCode(err, 'ENOENT')) throw err;
    };
    const ops = freezer
      ? { freeze: () => setFrozenV1(freezer, true, timeoutMs).catch(gone), thaw: () => setFrozenV1(freezer, false, timeoutMs).catch(gone), allProcs: () => this.#allProcs() }
      : { allProcs: () => this.#allProcs() };
    await killByFreezing(ops, timeoutMs, this.hierarchies[0]!.dir);
  }

  async procs(): Promise<number[]> {
    const dirs = this.hierarchies.map((h) => h.dir);
    if (this.unified) dirs.push(this.unified.dir);
    const lists = await Promise.all(dirs.map((d) => readOptional(path.join(d, 'cgroup.procs'))));
    if (lists.every((l) => l === undefined)) throw new NotFoundError(`cgroup ${dirs[0]} does not exist`, { path: dirs[0] });
    return [...new Set(lists.flatMap(parsePids))].sort((a, b) => a - b);
  }

  async addProcess(pid: number): Promise<void> {
    try {
      for (const h of this.hierarchies) await writeValue(path.join(h.dir, 'cgroup.procs'), pid);
    } catch (err) {
      if (err instanceof NsboxError && err.code === 'ESRCH') throw new NotFoundError(`no process ${pid} to move into ${this.hierarchies[0]!.dir}`, { code: 'ESRCH', cause: err });
      throw err;
    }
    if (this.unified) await this.unified.addProcess(pid);
  }

  async remove(): Promise<void> {
    const results = await Promise.allSettled([
      ...this.hierarchies.map(async (h) => {
        await rmdirTree(h.dir);
        await rmdirNsboxParents(h.mountpoint, h.dir);
      }),
      ...(this.unified ? [this.unified.remove()] : []),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  events(listener: (event: CgroupEvent) => void, options: WatchOptions = {}): () => void {
    const interval = options.intervalMs ?? 200;
    const onError = (err: unknown) => {
      if (!isCode(err, 'ENOENT')) options.onError?.(err);
    };
    const stops: Array<() => void> = [];
    // empty: the unified twin's cgroup.events (inotify) holds the same processes; else poll cgroup.procs.
    if (this.unified) stops.push(watchEmptyV2(this.unified.dir, listener, interval, onError));
    else {
      let last: boolean | undefined;
      stops.push(
        watchOrPoll(undefined, async () => {
          const now = (await this.#allProcs()).length > 0;
          if (last === true && !now) listener({ type: 'empty' });
          last = now;
        }, interval, onError),
      );
    }
    // oom: v1 signals OOM only through an eventfd (cgroup.event_control), which Node cannot create;
    // the oom_kill counter in memory.oom_control is polled instead.
    const memDir = this.#by.get('memory');
    if (memDir !== undefined) {
      let last: number | undefined;
      const file = path.join(memDir, 'memory.oom_control');
      stops.push(
        watchOrPoll(undefined, async () => {
          const text = await readOptional(file);
          if (text === undefined) return;
          const m = /^oom_kill (\d+)$/m.exec(text);
          const kills = m ? Number(m[1]) : 0;
          if (last !== undefined && kills > last) listener({ type: 'oom', oomKills: kills });
          last = kills;
        }, interval, onError),
      );
    } else if (this.unified) stops.push(watchOomV2(this.unified.dir, listener, interval, onError));
    return () => stops.forEach((stop) => stop());
  }

  placement(): CgroupPlacement {
    const out: CgroupPlacement = { tasksFiles: this.hierarchies.map((h) => path.join(h.dir, 'tasks')) };
    if (this.unified) out.v2Path = this.unified.dir;
    return out;
  }
}
