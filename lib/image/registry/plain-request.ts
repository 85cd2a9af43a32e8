/**
 * A registry request with a small body or none (HEAD, POST, a manifest or a small blob's PUT, a
 * GET read into memory) straight through node:http. got builds and merges an options object, a
 * request class and a promise wrapper for each request, ~1 ms of CPU more than node:http's own
 * per request: on two cores shared with a local registry, a push of a small image is as much CPU
 * as network, so its dozen requests go this way. Streamed bodies and downloads stay with got.
 * Redirects are followed as got follows them: at most `maxRedirects`, 303 (and 301/302 of a POST)
 * as GET without the body, and `authorization` dropped when the redirect leaves the origin.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

export interface PlainRequest {
  method: string;
  headers: Record<string, string>;
  body?: Buffer | undefined;
  signal?: AbortSignal | undefined;
  /** No answer (or no byte of it) for this long ends the request with ETIMEDOUT. */
  timeoutMs: number;
  followRedirect: boolean;
  maxRedirects: number;
}

export interface PlainResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: string;
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);

function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function once(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, req: PlainRequest): Promise<Omit<PlainResponse, 'url'>> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const r = mod.request(url, { method, headers, timeout: req.timeoutMs, ...(req.signal ? { signal: req.signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('close', () => {
        // a connection cut mid-answer: transient, as got reports it
        if (!res.complete) reject(req.signal?.aborted ? Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' }) : withCode(`${method} ${url.host}: the connection closed before the answer ended`, 'ECONNRESET'));
        else resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      });
    });
    r.on('timeout', () => r.destroy(withCode(`${method} ${url.host}: no answer in ${req.timeoutMs} ms`, 'ETIMEDOUT')));
    r.on('error', reject);
    r.end(body);
  });
}

export async function plainRequest(url: string, req: PlainRequest): Promise<PlainResponse> {
  let current = new URL(url);
  let method = req.method;
  let body = req.body;
  const headers = { ...req.headers };
  for (let hops = 0; ; hops++) {
    const res = await once(current, method, headers, body, req);
    const location = res.headers.location;
    if (!req.followRedirect || !REDIRECT.has(res.status) || !location) return { ...res, url: current.toString() };
    if (hops >= req.maxRedirects) throw withCode(`${req.method} ${url}: more than ${req.maxRedirects} redirects`, 'ERR_TOO_MANY_REDIRECTS');
    const next = new URL(location, current);
    if (next.origin !== current.origin) delete headers['authorization'];
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      if (method !== 'HEAD') method = 'GET';
      body = undefined;
      delete headers['content-length'];
      delete headers['content-type'];
    }
    current = next;
  }
}
