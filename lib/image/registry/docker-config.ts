/**
 * docker's config.json as `docker login` and `logout` write it: `auths` entries keyed by the server
 * (`https://index.docker.io/v1/` for Docker Hub, else `host[:port]`) holding base64 `user:password`,
 * or, when `credHelpers` names a helper for the registry or `credsStore` one for all, the secret
 * handed to that `docker-credential-*` helper and an empty `auths` entry left as docker leaves it.
 * Every other key of the file is kept; the file is replaced atomically, mode 0600.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from 'zod';
import { ValidationError } from '../../errors.js';
import { writeFileAtomic } from '../../storage/index.js';
import { helperErase, helperStore } from './cred-helper.js';
import { normalizeRegistryKey, type Credentials } from './credentials.js';

export const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';

export const DockerConfigFileSchema = z.looseObject({
  auths: z.record(z.string(), z.looseObject({ auth: z.string().optional(), username: z.string().optional(), password: z.string().optional(), identitytoken: z.string().optional() })).optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
});
export type DockerConfigFile = z.infer<typeof DockerConfigFileSchema>;

/** The key docker stores a registry's login under. */
export function serverKey(registry: string): string {
  const n = normalizeRegistryKey(registry);
  return n === 'docker.io' ? DOCKER_HUB_SERVER : n;
}

/** The helper that keeps `registry`'s secret, if any: its `credHelpers` entry, else `credsStore`. */
export function helperFor(config: DockerConfigFile, registry: string): string | undefined {
  const want = normalizeRegistryKey(registry);
  const own = Object.entries(config.credHelpers ?? {}).find(([k]) => normalizeRegistryKey(k) === want)?.[1];
  return own ?? (config.credsStore || undefined);
}

export async function readDockerConfig(path: string): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    return DockerConfigFileSchema.parse(text.trim() ? JSON.parse(text) : {});
  } catch (err) {
    throw new ValidationError(`${path} is not a valid docker config: ${(err as Error).message}`, 'dockerConfig', err);
  }
}

async function writeDockerConfig(path: string, config: DockerConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${JSON.stringify(config, null, '\t')}\n`, 0o600);
}

/** Stores `creds` for `registry`; says where (the file, or the helper's name). */
export async function storeLogin(path: string, registry: string, creds: Credentials): Promise<{ helper?: string }> {
  const config = await readDockerConfig(path);
  const key = serverKey(registry);
  const helper = helperFor(config, registry);
  const auths = Object.fromEntries(Object.entries(config.auths ?? {}).filter(([k]) => normalizeRegistryKey(k) !== normalizeRegistryKey(registry)));
  if (helper) {
    await helperStore(helper, key, creds);
    // docker keeps an empty entry, so that `docker info` and the file list the registry
    if (!config.credHelpers?.[key]) auths[key] = {};
  } else {
    auths[key] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  }
  await writeDockerConfig(path, { ...config, auths });
  return helper ? { helper } : {};
}

/** Removes `registry`'s login from the file and its helper; false when there was none. */
export async function removeLogin(path: string, registry: string): Promise<boolean> {
  const config = await readDockerConfig(path);
  const want = normalizeRegistryKey(registry);
  const helper = helperFor(config, registry);
  const erased = helper ? await helperErase(helper, serverKey(registry)) : false;
  const auths = config.auths ?? {};
  const keys = Object.keys(auths).filter((k) => normalizeRegistryKey(k) === want);
  if (!keys.length) return erased;
  for (const k of keys) delete auths[k];
  await writeDockerConfig(path, { ...config, auths });
  return true;
}
