import path from 'node:path';
import { NotFoundError, NsboxError, reportCleanupError } from '../errors.js';
import { exists, isCode, mkdirLevels, readOptional, rmdirNsboxParents, rmdirTree, writeValue } from './cgroupfs.js';
import { statsOf, type CgroupDriver, type CgroupEvent, type CgroupPlacement, type CgroupStats, type KillOptions, type WatchOptions } from './driver.js';
import type { ParsedResources } from './resources.js';
import { cpuStatsV2, needsCpu, setCpuV2 } from './v2/cpu.js';
import { setCpuset } from './shared/cpuset.js';
import { ioStatsV2, setIoV2 } from './v2/io.js';
import { memoryStatsV2, setMemoryV2 } from './v2/memory.js';
import { setHugetlb } from './shared/hugetlb.js';
import { pidsStats, setPids } from './shared/pids.js';
import { frozenV2, killV2, procsV2, setFrozenV2, watchEmptyV2, watchOomV2 } from './v2/core.js';

/** Controllers nsbox enables for its own sub-trees, where the parent offers them. */
export const V2_CONTROLLERS = ['cpu', 'cpuset', 'io', 'memory', 'pids', 'hugetlb'] as const;

export interface V2DriverOptions {
  /** Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
  mountpoint: string;
  /** The cgroup the mount shows at its top (mountinfo's root field); '/' unless inside a container. */
  mountRoot?: string;
  /** The cgroup's path in the hierarchy, e.g. '/nsbox/web'. */
  cgroupPath: string;
}

const splitList = (text: string | undefined) => new Set((text ?? '').split(/\s+/).filter(Boolean));

/** A cgroup in the unified hierarchy: one directory, controllers enabled through cgroup.subtree_control. */
export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;
  readonly cgroupPath: string;
  readonly dir: string;
  readonly #mountpoint: string;
  readonly #mountRoot: string;

  constructor(options: V2DriverOptions) {
    this.#mountpoint = options.mountpoint;
    this.#mountRoot = options.mountRoot ?? '/';
    this.cgroupPath = options.cgroupPath;
    const rel = path.posix.relative(this.#mountRoot, this.cgroupPath);
    if (rel === '' || rel.startsWith('..')) throw new NsboxError(`cgroup ${this.cgroupPath} is not below the mounted ${this.#mountRoot}`, { code: 'EINVAL' });
    this.dir = path.posix.join(this.#mountpoint, rel);
  }

  get paths(): Record<string, string> {
    return { unified: this.dir };
  }

  async create(): Promise<void> {
    await mkdirLevels(this.#mountpoint, this.dir);
    try {
      await this.#enableControllers();
    } catch (err) {
      await rmdirTree(this.dir).catch(reportCleanupError(`cgroup ${this.dir}: removing it after a failed create`));
      throw err;
    }
  }

  /**
   * Enables nsbox's controllers in the subtree_control of each ancestor that nsbox owns (its cgroup
   * path names nsbox), so the new cgroup gets its own memory.max, cpu.max... Ancestors nsbox does not
   * own are never written: what they do not delegate is reported by set() as missing.
   */
  async #enableControllers(): Promise<void> {
    const rel = path.posix.relative(this.#mountpoint, path.posix.dirname(this.dir));
    const levels = rel === '' ? [] : rel.split('/');
    let dir = this.#mountpoint;
    let cgroupPath = this.#mountRoot;
    for (const part of levels) {
      dir = path.posix.join(dir, part);
      cgroupPath = path.posix.join(cgroupPath, part);
      if (!cgroupPath.includes('nsbox')) continue;
      const available = splitList(await readOptional(path.join(dir, 'cgroup.controllers')));
      const enabled = splitList(await readOptional(path.join(dir, 'cgroup.subtree_control')));
      for (const c of V2_CONTROLLERS) {
        if (!available.has(c) || enabled.has(c)) continue;
        try {
          await writeValue(path.join(dir, 'cgroup.subtree_control'), `+${c}`);
        } catch (err) {
          // EBUSY: the ancestor holds processes itself (no internal processes); ENOENT/EINVAL: raced.
          if (!(err instanceof NsboxError) || !['EBUSY', 'ENOENT', 'EINVAL', 'EOPNOTSUPP'].includes(err.code)) throw err;
        }
      }
    }
  }

  exists(): Promise<boolean> {
    return exists(this.dir);
  }

  async controllers(): Promise<Set<string>> {
    const text = await readOptional(path.join(this.dir, 'cgroup.controllers'));
    if (text === undefined) throw new NotFoundError(`cgroup ${this.dir} does not exist`, { path: this.dir });
    return splitList(text);
  }

  async set(r: ParsedResources): Promise<void> {
    const have = await this.controllers();
    const need = (controller: string, wanted: boolean) => {
      if (wanted && !have.has(controller)) {
        throw new NsboxError(`the ${controller} controller is not available in ${this.dir} (cgroup.controllers: ${[...have].join(' ') || 'none'})`, {
          code: 'ENOTSUP',
          path: this.dir,
        });
      }
      return wanted;
    };
    // cpuset first, so a memory or cpu limit never applies to a wrong placement.
    if (need('cpuset', r.cpuset !== undefined)) await setCpuset(this.dir, r);
    if (need('memory', r.memory !== undefined || r.memorySwap !== undefined)) await setMemoryV2(this.dir, r);
    if (need('cpu', needsCpu(r))) await setCpuV2(this.dir, r);
    if (need('pids', r.pids !== undefined)) await setPids(this.dir, r);
    if (need('io', r.blkio !== undefined)) await setIoV2(this.dir, r);
    if (need('hugetlb', r.hugetlb !== undefined)) await setHugetlb(this.dir, r, true);
  }

  async stats(): Promise<CgroupStats> {
    const have = await this.controllers();
    const [memory, cpu, pids, io] = await Promise.all([
      have.has('memory') ? memoryStatsV2(this.dir) : undefined,
      cpuStatsV2(this.dir),
      have.has('pids') ? pidsStats(this.dir) : undefined,
      have.has('io') ? ioStatsV2(this.dir) : undefined,
    ]);
    return statsOf({ memory, cpu, pids, io });
  }

  freeze(): Promise<void> {
    return setFrozenV2(this.dir, true);
  }

  thaw(): Promise<void> {
    return setFrozenV2(this.dir, false);
  }

  frozen(): Promise<boolean> {
    return frozenV2(this.dir);
  }

  kill(options?: KillOptions): Promise<void> {
    return killV2(this.dir, options);
  }

  procs(): Promise<number[]> {
    return procsV2(this.dir);
  }

  async addProcess(pid: number): Promise<void> {
    try {
      await writeValue(path.join(this.dir, 'cgroup.procs'), pid);
    } catch (err) {
      if (err instanceof NsboxError && err.code === 'ESRCH') throw new NotFoundError(`no process ${pid} to move into ${this.dir}`, { code: 'ESRCH', path: this.dir, cause: err });
      throw err;
    }
  }

  async remove(): Promise<void> {
    await rmdirTree(this.dir);
    await rmdirNsboxParents(this.#mountpoint, this.dir);
  }

  events(listener: (event: CgroupEvent) => void, options: WatchOptions = {}): () => void {
    const interval = options.intervalMs ?? 1000;
    const onError = (err: unknown) => {
      if (!isCode(err, 'ENOENT')) options.onError?.(err);
    };
    const stops = [watchEmptyV2(this.dir, listener, interval, onError), watchOomV2(this.dir, listener, interval, onError)];
    return () => stops.forEach((stop) => stop());
  }

  placement(): CgroupPlacement {
    return { v2Path: this.dir, tasksFiles: [] };
  }
}
