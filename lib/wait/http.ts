/**
 * `{ http: { path, port, status? } }`: ready when a GET of `path` on the container port, from the
 * host side, answers `status` (any 2xx without it). Polled with a bounded backoff: an HTTP server
 * becoming ready gives no event.
 */
import http from 'node:http';
import { ValidationError } from '../errors.js';
import { pollWithBackoff } from './backoff.js';
import type { WaitRun, WaitTarget } from './target.js';

export interface HttpWait {
  path?: string;
  port: number;
  status?: number;
}

function get(host: string, port: number, path: string, signal: AbortSignal): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, signal, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    // Refused, reset, timed out: not ready yet, and the reason is the progress.
    req.once('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
    req.once('timeout', () => req.destroy(new Error('no answer in 5 s')));
  });
}

export function waitForHttp(target: WaitTarget, spec: HttpWait, signal: AbortSignal): WaitRun {
  let last = 'no request yet';
  const path = spec.path ?? '/';
  const ok = (s: number) => (spec.status === undefined ? s >= 200 && s < 300 : s === spec.status);
  const done = pollWithBackoff(async () => {
    const addr = target.hostAddress(spec.port);
    if (!addr) throw new ValidationError(`waitFor http: port ${spec.port} of ${target.name} is not reachable from the host (publish it, or use a bridge network)`, 'waitFor');
    const r = await get(addr.host, addr.port, path, signal);
    last = typeof r === 'number' ? `last answer ${r} from http://${addr.host}:${addr.port}${path}` : `http://${addr.host}:${addr.port}${path}: ${r}`;
    return typeof r === 'number' && ok(r);
  }, signal);
  return { done, progress: () => last };
}
