/**
 * `{ port: N }`: ready when N listens inside the container (its network namespace's sockets,
 * listening.ts) and, when the host can reach the port (published, or the container's address), a
 * TCP connect from the host side succeeds. Neither has a kernel event to wait on: polled with a
 * bounded backoff (backoff.ts).
 */
import net from 'node:net';
import { pollWithBackoff } from './backoff.js';
import { listeningPorts } from './listening.js';
import type { WaitRun, WaitTarget } from './target.js';

function connects(host: string, port: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, signal });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    // Refused, reset or aborted: not ready yet (the poll's signal ends the wait itself).
    s.once('error', () => resolve(false));
  });
}

export function waitForPort(target: WaitTarget, port: number, signal: AbortSignal): WaitRun {
  let inside = false;
  let host: string | undefined;
  const done = pollWithBackoff(async () => {
    const pid = target.pid();
    if (pid === undefined) return false;
    inside ||= (await listeningPorts(pid)).has(port);
    if (!inside) return false;
    const addr = target.hostAddress(port);
    if (!addr) return true;
    host = `${addr.host}:${addr.port}`;
    return connects(addr.host, addr.port, signal);
  }, signal);
  return {
    done,
    progress: () => (!inside ? 'not listening inside the container yet' : host ? `listening inside; the host's connect to ${host} did not succeed yet` : 'listening inside'),
  };
}
