/**
 * An image's config as container defaults, overridden by the caller's options as `docker run` does:
 * Entrypoint + Cmd, Env, WorkingDir, User (names resolved through the image's /etc/passwd and
 * /etc/group), Volumes, Labels, StopSignal, Healthcheck.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError, isCode } from '../errors.js';
import type { ImageRunConfig, ResolvedImage } from './image-source.js';
import type { ContainerConfig } from './options.js';
import { imageHealthcheck, mergeHealthcheck } from './health-config.js';

export interface RunDefaults {
  command: string[];
  env: string[];
  cwd: string;
  user?: { uid: number; gid: number; groups?: number[] };
  volumes: string[];
  labels: Record<string, string>;
  stopSignal?: string;
}

/** docker's rule: --entrypoint replaces the image's Entrypoint and drops its Cmd; a command replaces Cmd. */
export function commandFor(config: ImageRunConfig, command: string[] | undefined, entrypoint: string[] | undefined): string[] {
  const ep = entrypoint ?? config.Entrypoint ?? [];
  const cmd = command ?? (entrypoint ? [] : (config.Cmd ?? []));
  return [...ep, ...cmd];
}

/** The first regular file at `rel` in the layers (topmost first); a whiteout or a directory hides it. */
function readFromLayers(layers: string[], rel: string): string | undefined {
  for (const dir of layers) {
    const file = join(dir, rel);
    try {
      const st = statSync(file);
      if (st.isFile()) return readFileSync(file, 'utf8');
      return undefined; // a whiteout (char device 0/0) or something else: the file is gone
    } catch (err) {
      // not in this layer (ENOENT), or a file on the way is no directory (ENOTDIR)
      if (!isCode(err, 'ENOENT', 'ENOTDIR')) throw err;
    }
  }
  return undefined;
}

function lookup(text: string | undefined, name: string): string[] | undefined {
  for (const line of text?.split('\n') ?? []) {
    const fields = line.split(':');
    if (fields[0] === name) return fields;
  }
  return undefined;
}

/** Resolves 'name', 'uid', 'name:group', 'uid:gid' against the image's /etc/passwd and /etc/group. */
export function resolveUser(spec: string, layers: string[]): { uid: number; gid: number; groups?: number[] } {
  const [u, g] = spec.split(':') as [string, string | undefined];
  let uid: number;
  let gid = 0;
  const passwd = /^\d+$/.test(u) ? undefined : readFromLayers(layers, 'etc/passwd');
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const byId = readFromLayers(layers, 'etc/passwd')?.split('\n').map((l) => l.split(':')).find((f) => f[2] === u);
    if (byId) gid = Number(byId[3]);
  } else {
    const entry = lookup(passwd, u);
    if (!entry) throw new ValidationError(`unable to find user ${u}: no matching entries in the image's /etc/passwd`, 'user');
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const entry = lookup(readFromLayers(layers, 'etc/group'), g);
      if (!entry) throw new ValidationError(`unable to find group ${g}: no matching entries in the image's /etc/group`, 'user');
      gid = Number(entry[2]);
    }
  }
  return { uid, gid };
}

export function envObject(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** The image's config as defaults under the caller's options (docker run's precedence). */
export function withImageDefaults(config: ContainerConfig, image: ResolvedImage): ContainerConfig {
  const ic = image.config;
  const volumes = Object.keys(ic.Volumes ?? {})
    .filter((target) => target.startsWith('/') && !config.mounts.some((m) => m.target === target))
    .map((target) => ({ type: 'tmpfs' as const, target, readonly: false }));
  const user = config.user ?? (ic.User ? resolveUser(ic.User, image.layers) : undefined);
  const healthcheck = mergeHealthcheck(config.healthcheck, imageHealthcheck(ic.Healthcheck));
  return {
    ...config,
    command: commandFor(ic, config.command, config.entrypoint),
    cwd: config.cwd ?? (ic.WorkingDir || undefined),
    ...(user !== undefined ? { user } : {}),
    // Anonymous volumes: a private scratch file system each, gone with the container.
    mounts: [...config.mounts, ...volumes],
    labels: { ...(ic.Labels ?? {}), ...(config.labels ?? {}) },
    ...(config.stopSignal ?? ic.StopSignal ? { stopSignal: config.stopSignal ?? ic.StopSignal } : {}),
    ...(healthcheck ? { healthcheck } : {}),
    ...(config.shell ?? ic.Shell?.length ? { shell: config.shell ?? ic.Shell! } : {}),
  };
}

