/**
 * `docker login` and `logout`: the credentials checked against the registry, then kept in docker's
 * config.json (or its credential helper), where every pull and push of nsbox and docker finds them.
 */
import { dockerConfigPath, StaticCredentials, type Credentials } from './credentials.js';
import { removeLogin, storeLogin } from './docker-config.js';
import { RegistryClient } from './registry-client.js';

export interface LoginOptions {
  /** The config.json (default `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`). */
  dockerConfig?: string;
  insecureRegistries?: string[];
  signal?: AbortSignal;
}

/** Checks `creds` against `registry` (`host[:port]`, `docker.io`) and stores them; says where. */
export async function login(registry: string, creds: Credentials, opts: LoginOptions = {}): Promise<{ path: string; helper?: string }> {
  await verifyLogin(registry, creds, opts);
  const path = opts.dockerConfig ?? dockerConfigPath();
  return { path, ...(await storeLogin(path, registry, creds)) };
}

/** Only the check (the Engine API's `POST /auth`: the docker CLI keeps the credentials itself). */
export async function verifyLogin(registry: string, creds: Credentials, opts: Omit<LoginOptions, 'dockerConfig'> = {}): Promise<void> {
  const client = new RegistryClient({
    credentialSources: [new StaticCredentials(creds)],
    ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
  });
  await client.checkLogin(registryHost(registry), opts.signal);
}

/** Forgets `registry`'s credentials; false when there were none. */
export async function logout(registry: string, opts: Pick<LoginOptions, 'dockerConfig'> = {}): Promise<boolean> {
  return removeLogin(opts.dockerConfig ?? dockerConfigPath(), registry);
}

/** `https://host:5000/v1/` or `host:5000` → `host:5000`; Docker Hub's names → `registry-1.docker.io`'s `docker.io`. */
export function registryHost(server: string): string {
  const host = server.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0]!.toLowerCase();
  return ['index.docker.io', 'registry-1.docker.io', ''].includes(host) ? 'docker.io' : host;
}
