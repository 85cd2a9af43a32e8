/**
 * Whether a TCP port listens in a process's network namespace, read from `/proc/PID/net/tcp` and
 * `tcp6` (the kernel shows there the sockets of the namespace PID is in): no exec, no shell and no
 * program needed in the container.
 */
import { readFile } from 'node:fs/promises';

const LISTEN = '0A';

/** The ports in LISTEN state in `pid`'s network namespace (IPv4 and IPv6). */
export async function listeningPorts(pid: number): Promise<Set<number>> {
  const out = new Set<number>();
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/net/${file}`, 'utf8');
    } catch (e) {
      // No IPv6 in the kernel (tcp6 missing); a process gone is the caller's to notice (exited()).
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESRCH') continue;
      throw e;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== LISTEN) continue;
      const port = parseInt(f[1]!.split(':')[1] ?? '', 16);
      if (Number.isFinite(port)) out.add(port);
    }
  }
  return out;
}
