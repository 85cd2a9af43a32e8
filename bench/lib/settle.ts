/**
 * Between two timed commands of a race: what the first one left running is waited for (not
 * counted), so that it does not run during the next one's timing. A command may return while
 * processes it started go on working (podman's exec leaves its session's conmon and a
 * `podman … cleanup`). Processes are found by their command line naming the benchmark's directory
 * (its stores), and waited for on their pidfds, never by polling.
 */
import { closeSync, readdirSync, readFileSync } from 'node:fs';
import { native } from '../../lib/native.ts';

/** Processes other than ours whose command line names `dir`. */
export function processesNaming(dir: string): Set<number> {
  const found = new Set<number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(dir)) found.add(Number(name));
    } catch {
      // gone already
    }
  }
  return found;
}

/**
 * Waits until only the processes of `settled` (those meant to stay: servers, the containers'
 * supervisors) are left of those naming `dir`; looks again after each wait (one may start
 * another). Returns the milliseconds waited, or undefined when nothing was left.
 */
export async function settle(dir: string, settled: Set<number>): Promise<number | undefined> {
  const t0 = process.hrtime.bigint();
  for (let first = true; ; first = false) {
    const left = [...processesNaming(dir)].filter((pid) => !settled.has(pid));
    if (!left.length) return first ? undefined : Number(process.hrtime.bigint() - t0) / 1e6;
    await Promise.all(
      left.map(
        (pid) =>
          new Promise<void>((resolve) => {
            let fd: number;
            try {
              fd = native.pidfdOpen(pid);
            } catch {
              resolve(); // gone already
              return;
            }
            native.watchExit(fd, () => {
              closeSync(fd);
              resolve();
            });
          }),
      ),
    );
  }
}

/**
 * A race: one warm-up of each row, then `n` rounds in which every row runs once (`run(row,
 * warmUp)`), so that drift on this shared machine hits every row alike; after each command, what it
 * left running is waited for (`settle`, not counted), and `after` gets the milliseconds waited. A
 * row whose command throws is out of the race with its error.
 */
export async function race<R extends { error?: string }>(
  rows: R[],
  n: number,
  run: (row: R, warmUp: boolean) => void,
  leftovers: { dir: string; settled: Set<number>; after?: (row: R, ms: number | undefined) => void },
): Promise<void> {
  for (let i = -1; i < n; i++) {
    for (const row of rows) {
      if (row.error) continue;
      try {
        run(row, i < 0);
      } catch (e) {
        row.error = (e as Error).message;
      }
      const ms = await settle(leftovers.dir, leftovers.settled);
      if (i >= 0) leftovers.after?.(row, ms);
    }
  }
}
