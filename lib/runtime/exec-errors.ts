/**
 * What a failed exec means to a person: the kernel says EAGAIN when the fork of the exec'd process
 * would pass the container's pids.max; the error then names the limit instead of the syscall.
 */
import { NsboxError, isCode, reportError } from '../errors.js';
import type { Cgroup } from '../cgroup/cgroup.js';

/** `e` as it is, or as a pids-limit error when the container's cgroup refused the fork. */
export async function explainExecFailure(e: unknown, id: string, cgroup: Cgroup | undefined): Promise<unknown> {
  if (!(e instanceof NsboxError) || e.code !== 'EAGAIN' || e.syscall !== 'clone3' || !cgroup) return e;
  let pids;
  try {
    pids = (await cgroup.stats()).pids;
  } catch (err) {
    // ENOENT: the container ended meanwhile (its cgroup went), nothing to say about its limit
    if (!isCode(err, 'ENOENT')) reportError(`reading the pids of container ${id.slice(0, 12)}`)(err);
    return e;
  }
  // The exec's first child joins the cgroup before it forks (cpp/spawn-core.cc): a moment with
  // two pids of the container's, so one free pid is not enough.
  if (!pids || pids.limit === null || pids.current + 2 <= pids.limit) return e;
  const why = pids.current >= pids.limit ? 'the container is at its pids limit' : 'the container is one pid below its pids limit, and starting an exec takes two for a moment';
  return new NsboxError(`cannot exec in container ${id.slice(0, 12)}: ${why} (pids.max = ${pids.limit}, pids.current = ${pids.current}): ${e.message}`, {
    code: e.code,
    ...(e.errno !== undefined ? { errno: e.errno } : {}),
    syscall: e.syscall,
    cause: e,
  });
}
