/**
 * Where registry credentials come from: an ordered list of sources, asked in turn; the first that
 * knows the registry wins (explicit credentials, then ~/.docker/config.json: the registry's
 * `credHelpers` helper, else the `credsStore` helper, else `auths`).
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import { ValidationError } from '../../errors.js';
import { helperGet } from './cred-helper.js';

export const CredentialsSchema = z.object({
  username: z.string(),
  password: z.string(),
});
export type Credentials = z.infer<typeof CredentialsSchema>;

export interface CredentialSource {
  /** For messages: 'explicit', '/root/.docker/config.json'. */
  readonly name: string;
  /** Credentials for `registry` (`127.0.0.1:5001`, `docker.io`), or undefined when unknown here. */
  get(registry: string): Promise<Credentials | undefined>;
}

/** The registry key docker uses for Docker Hub in config.json. */
const DOCKER_HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

/** `https://host:port/v1/` → `host:port`, as docker normalises config.json keys. */
export function normalizeRegistryKey(key: string): string {
  const host = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0] ?? '';
  const lower = host.toLowerCase();
  return DOCKER_HUB_KEYS.includes(lower) || DOCKER_HUB_KEYS.includes(key) ? 'docker.io' : lower;
}

/** Fixed credentials, for every registry or only for the listed ones. */
export class StaticCredentials implements CredentialSource {
  readonly name = 'explicit';
  readonly #creds: Credentials;
  readonly #registries?: Set<string>;

  constructor(creds: Credentials, registries?: readonly string[]) {
    const r = CredentialsSchema.safeParse(creds);
    if (!r.success) throw new ValidationError('credentials need a string username and password', 'auth', r.error);
    this.#creds = r.data;
    if (registries) this.#registries = new Set(registries.map(normalizeRegistryKey));
  }

  get(registry: string): Promise<Credentials | undefined> {
    const ok = !this.#registries || this.#registries.has(normalizeRegistryKey(registry));
    return Promise.resolve(ok ? this.#creds : undefined);
  }
}

const AuthEntrySchema = z.object({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
}).loose();
const DockerConfigSchema = z.object({
  auths: z.record(z.string(), AuthEntrySchema).optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
}).loose();

/** The config.json docker reads: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json');
}

/** `auths` of a docker config.json (base64 `auth` = user:password, or `username` + `password`). */
export class DockerConfigCredentials implements CredentialSource {
  readonly name: string;
  readonly #path: string;

  constructor(path: string = dockerConfigPath()) {
    this.#path = path;
    this.name = path;
  }

  async get(registry: string): Promise<Credentials | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let parsed: z.infer<typeof DockerConfigSchema>;
    try {
      parsed = DockerConfigSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new ValidationError(`${this.#path} is not a valid docker config: ${(err as Error).message}`, 'dockerConfig', err);
    }
    const want = normalizeRegistryKey(registry);
    const server = want === 'docker.io' ? 'https://index.docker.io/v1/' : want;
    const own = Object.entries(parsed.credHelpers ?? {}).find(([k]) => normalizeRegistryKey(k) === want);
    if (own) return helperGet(own[1], own[0]);
    if (parsed.credsStore) {
      const stored = await helperGet(parsed.credsStore, server);
      if (stored) return stored;
    }
    for (const [key, entry] of Object.entries(parsed.auths ?? {})) {
      if (normalizeRegistryKey(key) !== want) continue;
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon === -1) throw new ValidationError(`${this.#path}: the auth entry for ${key} is not base64 of user:password`, 'dockerConfig');
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
      if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    }
    return undefined;
  }
}

/** Asks each source in order; the first answer wins. */
export async function findCredentials(sources: readonly CredentialSource[], registry: string): Promise<Credentials | undefined> {
  for (const source of sources) {
    const creds = await source.get(registry);
    if (creds) return creds;
  }
  return undefined;
}
