/** The `X-Registry-Auth` header: base64(url) JSON of docker's AuthConfig; `X-Registry-Config`: a map of them by registry. */
import * as z from 'zod';
import type { Credentials } from '../image/registry/index.js';
import { ApiError } from './api-error.js';

const AuthConfigSchema = z.looseObject({
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
  serveraddress: z.string().optional(),
});

/** The credentials in the header, or undefined when there are none (the CLI sends `e30=`, `{}`). */
export function registryAuth(header: string | string[] | undefined): Credentials | undefined {
  const json = base64Json(header, 'X-Registry-Auth');
  if (json === undefined) return undefined;
  const r = AuthConfigSchema.safeParse(json);
  if (!r.success) throw new ApiError(400, 'invalid X-Registry-Auth header: not an auth config');
  const { username, password, identitytoken } = r.data;
  if (identitytoken) throw new ApiError(400, 'X-Registry-Auth: identity tokens are not supported by nsbox; give username and password');
  return username ? { username, password: password ?? '' } : undefined;
}

/** `POST /build`'s X-Registry-Config: base64 JSON of { registry: AuthConfig }; the entries with a username. */
export function registryConfigHeader(header: string | string[] | undefined): Record<string, Credentials> | undefined {
  const json = base64Json(header, 'X-Registry-Config');
  if (json === undefined) return undefined;
  const r = z.record(z.string(), AuthConfigSchema).safeParse(json);
  if (!r.success) throw new ApiError(400, 'invalid X-Registry-Config header: not a map of auth configs');
  const out: Record<string, Credentials> = {};
  for (const [server, a] of Object.entries(r.data)) if (a.username) out[server] = { username: a.username, password: a.password ?? '' };
  return out;
}

/** A header's base64 JSON, or undefined when the header is absent or empty; bad input is the client's 400. */
function base64Json(header: string | string[] | undefined, name: string): unknown {
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw) return undefined;
  try {
    // Node's base64 decoder takes the URL-safe alphabet too.
    return JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as unknown;
  } catch {
    // SyntaxError, all JSON.parse throws (the decoder skips what is no base64): the client's bad header
    throw new ApiError(400, `invalid ${name} header: not base64 JSON`);
  }
}
