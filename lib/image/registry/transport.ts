/**
 * One registry host: its base URL (plain HTTP only for loopback or `insecureRegistries`), its auth
 * (none, Basic, or Bearer tokens cached per scope until they expire) and requests with retries.
 * Requests carry `Authorization` as a header, which got drops when a redirect leaves the origin.
 */
import { isIP } from 'node:net';
import type { Method, OptionsInit } from 'got';
import * as z from 'zod';
import { parseChallenges, type Challenge } from './challenge.js';
import { findCredentials, type CredentialSource, type Credentials } from './credentials.js';
import { RegistryError } from './errors.js';
import { loadGot } from '../../load-got.js';
import { plainRequest } from './plain-request.js';
import { DEFAULT_RETRY, isTransientCode, withRetries, type RetryPolicy } from './retry.js';

export interface TransportOptions {
  credentials: readonly CredentialSource[];
  insecureRegistries: readonly string[];
  retry: RetryPolicy;
  userAgent: string;
  /** Connect / response timeouts for each request, ms. */
  timeoutMs: number;
  /** The clock tokens expire by, ms since the epoch (default Date.now): tests move it on. */
  now?: () => number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  url: string;
}

export interface RequestSpec {
  method: Method;
  /** `/v2/…` under the registry, or an absolute URL (an upload `Location`). */
  url: string;
  /** Token scopes the request needs: `repository:library/busybox:pull`. */
  scopes: readonly string[];
  /** What the caller is doing, for messages: `pull 127.0.0.1:5000/nope:latest`. */
  op: string;
  headers?: Record<string, string>;
  /** A buffer, or a factory for a fresh stream per attempt. */
  body?: Buffer | (() => NodeJS.ReadableStream);
  signal?: AbortSignal | undefined;
  /** Retry network errors and 5xx; off for requests that are not safe to repeat. */
  retry?: boolean;
  followRedirect?: boolean;
}

const ErrorBodySchema = z.object({
  errors: z.array(z.object({ code: z.string(), message: z.string().optional(), detail: z.unknown().optional() })).min(1),
});

const TokenResponseSchema = z.object({
  token: z.string().optional(),
  access_token: z.string().optional(),
  expires_in: z.number().optional(),
  issued_at: z.string().optional(),
});

/** docker.io's API lives on another host than its name. */
function apiHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

export function isLoopback(domain: string): boolean {
  let host = domain.replace(/:\d+$/, '');
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class RegistryTransport {
  readonly registry: string;
  readonly baseUrl: string;
  readonly #opts: TransportOptions;
  /** undefined: not pinged yet; null: no auth needed. */
  #challenge: Challenge | null | undefined;
  #pinging: { done: Promise<void>; signal: AbortSignal | undefined } | undefined;
  #creds: Credentials | null | undefined;
  readonly #tokens = new Map<string, { token: string; expiresAt: number }>();
  readonly #pending = new Map<string, Promise<string>>();
  readonly #now: () => number;

  constructor(registry: string, opts: TransportOptions) {
    this.registry = registry;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    const host = apiHost(registry);
    const plain = isLoopback(registry) || opts.insecureRegistries.some((r) => r === registry || r === registry.replace(/:\d+$/, ''));
    this.baseUrl = `${plain ? 'http' : 'https'}://${host}`;
  }

  url(pathOrUrl: string): string {
    return /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : this.baseUrl + pathOrUrl;
  }

  gotOptions(method: Method, headers: Record<string, string>, signal?: AbortSignal, followRedirect = true): OptionsInit & { isStream?: undefined } {
    const t = this.#opts.timeoutMs;
    return {
      method,
      headers: { 'user-agent': this.#opts.userAgent, ...headers },
      throwHttpErrors: false,
      followRedirect,
      maxRedirects: 10,
      retry: { limit: 0 },
      decompress: false,
      timeout: { lookup: t, connect: t, secureConnect: t, socket: t, response: t },
      ...(signal ? { signal } : {}),
    };
  }

  /**
   * `GET /v2/`: learns whether and how the registry wants auth, once. Callers that come while it
   * is on its way (a push's first HEADs, all at once) wait for the same request.
   */
  async ping(signal?: AbortSignal): Promise<void> {
    while (this.#challenge === undefined) {
      let pending = this.#pinging;
      if (!pending) {
        const mine = { done: this.#ping(signal), signal };
        const clear = () => {
          if (this.#pinging === mine) this.#pinging = undefined;
        };
        mine.done.then(clear, clear);
        this.#pinging = pending = mine;
      }
      try {
        await pending.done;
      } catch (err) {
        // the ping of another caller, stopped by that caller's signal: this one asks again
        if (!pending.signal?.aborted || pending.signal === signal || signal?.aborted) throw err;
      }
    }
  }

  async #ping(signal?: AbortSignal): Promise<void> {
    const op = `ping ${this.registry}`;
    const res = await withRetries(this.#opts.retry, () => this.#send({ method: 'GET', url: '/v2/', scopes: [], op, signal }, {}), (e) => this.#retryable(e), { signal });
    if (res.status === 200) {
      this.#challenge = null;
    } else if (res.status === 401) {
      this.#challenge = this.#pickChallenge(res);
    } else {
      throw this.errorFor(op, res);
    }
  }

  #pickChallenge(res: HttpResponse): Challenge | null {
    const challenges = parseChallenges(res.headers['www-authenticate']);
    return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? null;
  }

  async #credentials(): Promise<Credentials | undefined> {
    if (this.#creds === undefined) this.#creds = (await findCredentials(this.#opts.credentials, this.registry)) ?? null;
    return this.#creds ?? undefined;
  }

  /** The `Authorization` header for a request needing `scopes` ({} when none is needed). */
  async authorize(scopes: readonly string[], op: string, signal?: AbortSignal): Promise<Record<string, string>> {
    await this.ping(signal);
    const c = this.#challenge;
    if (!c) return {};
    const creds = await this.#credentials();
    if (c.scheme === 'basic') {
      return creds ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` } : {};
    }
    if (c.scheme !== 'bearer') return {};
    const token = await this.#token(c, scopes, creds, op, signal);
    return { authorization: `Bearer ${token}` };
  }

  async #token(c: Challenge, scopes: readonly string[], creds: Credentials | undefined, op: string, signal?: AbortSignal): Promise<string> {
    const key = [c.params['realm'], c.params['service'], ...[...scopes].sort()].join(' ');
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > this.#now()) return cached.token;
    // Parallel requests on one scope (layer downloads) share one token request.
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#fetchToken(c, key, scopes, creds, op, signal).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  async #fetchToken(c: Challenge, key: string, scopes: readonly string[], creds: Credentials | undefined, op: string, signal?: AbortSignal): Promise<string> {
    const realm = c.params['realm'];
    if (!realm) throw new RegistryError(`${op}: ${this.registry} asked for a Bearer token without a realm`, { registry: this.registry, code: 'UNAUTHORIZED', status: 401 });
    const url = new URL(realm);
    if (c.params['service']) url.searchParams.set('service', c.params['service']);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds) headers['authorization'] = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const { got } = await loadGot();
    const res = await withRetries(this.#opts.retry, async () => {
      try {
        const r = await got(url, { ...this.gotOptions('GET', headers, signal), responseType: 'buffer' });
        const out: HttpResponse = { status: r.statusCode, headers: r.headers, body: r.body, url: r.url };
        if (out.status >= 500) throw this.errorFor(`${op}: token from ${url.host}`, out);
        return out;
      } catch (err) {
        throw err instanceof RegistryError ? err : this.networkError(`${op}: token from ${url.host}`, err, url.host);
      }
    }, (e) => this.#retryable(e), { signal });
    if (res.status === 401 || res.status === 403) throw this.unauthorized(op, creds !== undefined, res.status);
    if (res.status !== 200) throw this.errorFor(`${op}: token from ${url.host}`, res);
    let parsed: z.infer<typeof TokenResponseSchema>;
    try {
      parsed = TokenResponseSchema.parse(JSON.parse(res.body.toString('utf8')));
    } catch (err) {
      throw new RegistryError(`${op}: the token server ${url.host} sent an unreadable answer`, { registry: this.registry, code: 'TOKEN_INVALID', status: res.status, cause: err });
    }
    const token = parsed.token ?? parsed.access_token;
    if (!token) throw new RegistryError(`${op}: the token server ${url.host} sent no token`, { registry: this.registry, code: 'TOKEN_INVALID', status: res.status });
    const lifetime = (parsed.expires_in ?? 60) * 1000;
    const issued = parsed.issued_at ? Date.parse(parsed.issued_at) : NaN;
    const now = this.#now();
    const start = Number.isFinite(issued) && issued <= now ? issued : now;
    // Renew a little early so a token never expires between the check and the request.
    this.#tokens.set(key, { token, expiresAt: start + lifetime - Math.min(30_000, lifetime / 10) });
    return token;
  }

  /**
   * After a 401: forget the cached token for these scopes (and take a changed challenge); says
   * whether asking again can help. Throws the UNAUTHORIZED error when it cannot.
   */
  async onUnauthorized(res: HttpResponse, scopes: readonly string[], op: string, alreadyRetried: boolean): Promise<void> {
    const next = this.#pickChallenge(res);
    const prev = this.#challenge;
    this.#challenge = next;
    const creds = await this.#credentials();
    if (next?.scheme === 'bearer' && !alreadyRetried) {
      for (const k of this.#tokens.keys()) if (scopes.every((s) => k.includes(s))) this.#tokens.delete(k);
      return;
    }
    if (next?.scheme === 'basic' && prev?.scheme !== 'basic' && creds && !alreadyRetried) return;
    throw this.unauthorized(op, creds !== undefined, res.status);
  }

  unauthorized(op: string, hadCredentials: boolean, status: number): RegistryError {
    const where = this.#opts.credentials.map((s) => s.name).join(', ') || 'no credential source';
    const msg = hadCredentials
      ? `${op}: unauthorized: check the credentials for ${this.registry}`
      : `${op}: unauthorized: ${this.registry} needs credentials and none were found (looked in: ${where})`;
    return new RegistryError(msg, { registry: this.registry, code: 'UNAUTHORIZED', status });
  }

  /** A registry error from a response: the Distribution error code and message when there is one. */
  errorFor(op: string, res: HttpResponse): RegistryError {
    let code = `HTTP_${res.status}`;
    let text = res.status >= 500 ? 'registry failed' : 'unexpected answer';
    try {
      const first = ErrorBodySchema.parse(JSON.parse(res.body.toString('utf8'))).errors[0]!;
      code = first.code;
      text = first.message ?? first.code.toLowerCase().replace(/_/g, ' ');
      // A refused write says what it refused in the detail (a blob's digest, a parser's complaint).
      if (res.status === 400 && typeof first.detail === 'string' && first.detail) text += `: ${first.detail.slice(0, 300)}`;
    } catch (err) {
      // a body that is no JSON (SyntaxError) or no Distribution error (ZodError): the status alone speaks
      if (!(err instanceof SyntaxError) && !(err instanceof z.ZodError)) throw err;
      if (res.status === 404) {
        code = 'NOT_FOUND';
        text = 'not found';
      }
    }
    if (res.status === 403 && code.startsWith('HTTP_')) code = 'DENIED';
    return new RegistryError(`${op}: ${text} (${res.status})`, { registry: this.registry, code, status: res.status });
  }

  networkError(op: string, err: unknown, host = this.registry): RegistryError {
    if (err instanceof RegistryError) return err;
    const code = (err as { code?: string }).code ?? 'ERR_NETWORK';
    const why = (err as { name?: string }).name === 'AbortError' || code === 'ERR_ABORTED' ? 'aborted' : code;
    const msg = host === this.registry
      ? `${op}: registry ${this.registry} is not reachable: ${why}`
      : `${op}: ${host} is not reachable: ${why}`;
    return new RegistryError(msg, { registry: this.registry, code: why === 'aborted' ? 'ABORTED' : code, cause: err });
  }

  #retryable(err: unknown): boolean {
    if (!(err instanceof RegistryError)) return false;
    return (err.status !== undefined && err.status >= 500) || (err.status === undefined && isTransientCode(err.code));
  }

  async #send(spec: RequestSpec, auth: Record<string, string>): Promise<HttpResponse> {
    if (spec.body === undefined || Buffer.isBuffer(spec.body)) {
      try {
        return await plainRequest(this.url(spec.url), {
          method: spec.method, headers: { 'user-agent': this.#opts.userAgent, ...auth, ...spec.headers }, body: spec.body, signal: spec.signal,
          timeoutMs: this.#opts.timeoutMs, followRedirect: spec.followRedirect ?? true, maxRedirects: 10,
        });
      } catch (err) {
        if ((err as { code?: string }).code) throw this.networkError(spec.op, err);
        throw err;
      }
    }
    // a streamed body (a large blob's upload): through got
    const { got, RequestError } = await loadGot();
    const body = spec.body();
    try {
      const r = await got(this.url(spec.url), {
        ...this.gotOptions(spec.method, { ...auth, ...spec.headers }, spec.signal, spec.followRedirect ?? true),
        responseType: 'buffer',
        body: body as unknown as Buffer,
      });
      return { status: r.statusCode, headers: r.headers, body: r.body, url: r.url };
    } catch (err) {
      if (err instanceof RequestError || (err as { code?: string }).code) throw this.networkError(spec.op, err);
      throw err;
    }
  }

  /** A request with auth (one re-auth after a 401) and, unless `retry: false`, retries on network errors and 5xx. */
  async request(spec: RequestSpec): Promise<HttpResponse> {
    const once = async (): Promise<HttpResponse> => {
      let retried = false;
      for (;;) {
        const auth = await this.authorize(spec.scopes, spec.op, spec.signal);
        const res = await this.#send(spec, auth);
        if (res.status === 401) {
          await this.onUnauthorized(res, spec.scopes, spec.op, retried);
          retried = true;
          continue;
        }
        if (res.status >= 500 && spec.retry !== false) throw this.errorFor(spec.op, res);
        return res;
      }
    };
    if (spec.retry === false) return once();
    return withRetries(this.#opts.retry, once, (e) => this.#retryable(e), { signal: spec.signal });
  }

  static header = header;
}

export const DEFAULT_TRANSPORT: Omit<TransportOptions, 'credentials'> = {
  insecureRegistries: [],
  retry: DEFAULT_RETRY,
  userAgent: 'nsbox',
  timeoutMs: 30_000,
};
