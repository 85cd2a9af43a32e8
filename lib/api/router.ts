/**
 * `Router`: method + path pattern → handler. Patterns have `:name` (one path segment) and `*name`
 * (one or more segments, for image names such as `127.0.0.1:5000/team/app:1`, as docker's own
 * router has `{name:.*}`). The `/v1.NN` prefix is taken off before matching.
 */
import { ApiError } from './api-error.js';
import type { Exchange } from './exchange.js';

export type Handler = (ex: Exchange) => Promise<void>;

interface Route {
  method: string;
  pattern: string;
  regex: RegExp;
  names: string[];
  handler: Handler;
}

/** The API version nsbox speaks (docker's, at which the docker CLI needs no /events for run). */
export const API_VERSION = '1.41';
/** The oldest version accepted, as docker 20.10 (API 1.41) has it. */
export const MIN_API_VERSION = '1.12';

function compile(pattern: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const source = pattern
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) {
        names.push(part.slice(1));
        return '([^/]+)';
      }
      if (part.startsWith('*')) {
        names.push(part.slice(1));
        return '(.+)';
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { regex: new RegExp(`^${source}/?$`), names };
}

/** Compares dotted versions numerically: 1.9 < 1.12. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Takes `/v1.NN` off `path`; refuses a version newer than ours, as docker refuses a too-new client. */
export function stripVersion(path: string): { path: string; version?: string } {
  const m = /^\/v(\d+\.\d+)(\/.*)?$/.exec(path);
  if (!m) return { path };
  const version = m[1]!;
  if (compareVersions(version, API_VERSION) > 0) {
    throw new ApiError(400, `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw new ApiError(400, `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  return { path: m[2] ?? '/', version };
}

export class Router {
  readonly #routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.#routes.push({ method, pattern, handler, ...compile(pattern) });
    return this;
  }

  /** The handler for `method path`, with its parameters (URL-decoded); ApiError 404 otherwise. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string>; pattern: string } {
    for (const r of this.#routes) {
      const m = r.regex.exec(path);
      if (!m) continue;
      // HEAD is answered by the GET route, as Go's router does for docker's /_ping.
      if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
      return { handler: r.handler, params, pattern: r.pattern };
    }
    // docker answers an unknown route with 404 "page not found", whatever the method.
    throw new ApiError(404, 'page not found');
  }
}
