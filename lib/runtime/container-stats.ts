/** A container's cgroup read over time: stats samples until it exits, and whether the OOM killer ended it. */
import type { Cgroup } from '../cgroup/cgroup.js';
import type { CgroupStats } from '../cgroup/driver.js';

const gone = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

export const ContainerStats = {
  /** A sample every `intervalMs` while `running()`; ends as soon as `exited` resolves. */
  async *stream(cg: Cgroup, running: () => boolean, exited: () => Promise<unknown>, intervalMs: number): AsyncIterableIterator<CgroupStats> {
    while (running()) {
      yield await cg.stats();
      if (!running()) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited(), new Promise((r) => (timer = setTimeout(r, intervalMs)))]);
      clearTimeout(timer);
    }
  },

  /**
   * Whether the kernel's OOM killer ended a process of the cgroup. A cgroup removed meanwhile
   * (remove() raced the exit) has no answer: false. Any other failure is reported, and false.
   */
  async oomKilled(cg: Cgroup): Promise<boolean> {
    try {
      return ((await cg.stats()).memory?.oomKills ?? 0) > 0;
    } catch (e) {
      if (!gone(e)) process.emitWarning(`cgroup ${cg.name}: cannot read its OOM kills: ${(e as Error).message}`, { code: 'NSBOX_CGROUP_STATS' });
      return false;
    }
  },

  /** Thaws before a kill (a frozen process cannot die). A cgroup already gone has nothing frozen; other failures are reported. */
  async thawForKill(cg: Cgroup): Promise<void> {
    try {
      await cg.thaw();
    } catch (e) {
      if (!gone(e)) process.emitWarning(`cgroup ${cg.name}: cannot thaw it before killing its processes: ${(e as Error).message}`, { code: 'NSBOX_CGROUP_THAW' });
    }
  },
};
