/**
 * The body of `POST /containers/create` (docker's Config with HostConfig inside) and its mapping
 * onto the engine's CreateRequest. The docker CLI sends every field, zero values included, and Go's
 * nil slices as null: zero and null mean "not set" here, and fields nsbox has no use for are ignored.
 */
import { parseVolumeSpec, VOLUME_NAME, type VolumeRequest } from '../engine/volumes.js';
import * as z from 'zod';
import type { ContainerOptions, Healthcheck, Mount } from '../runtime/options.js';
import { ApiError } from './api-error.js';
import { publishAllPorts } from '../network/port-spec.js';
import type { NetworkOptions } from '../network/schemas.js';
import { defaultNetworkMode } from '../network/network-mode.js';
import { networkRequestOf } from './network-body.js';
import type { CreateRequest } from '../engine/engine.js';

const strings = z.array(z.string()).nullish();
/** Cmd and Entrypoint: a list, or (older clients) one string for the shell form's words. */
const command = z.union([z.array(z.string()), z.string()]).nullish();
const num = z.number().nullish();

const HostConfigSchema = z
  .object({
    Binds: strings,
    Mounts: z
      .array(
        z.looseObject({
          Type: z.string().nullish(),
          Source: z.string().nullish(),
          Target: z.string(),
          ReadOnly: z.boolean().nullish(),
          TmpfsOptions: z.looseObject({ SizeBytes: num, Mode: num }).nullish(),
        }),
      )
      .nullish(),
    Tmpfs: z.record(z.string(), z.string()).nullish(),
    Memory: num,
    MemorySwap: num,
    NanoCpus: num,
    CpuQuota: num,
    CpuPeriod: num,
    CpuShares: num,
    PidsLimit: num,
    CpusetCpus: z.string().nullish(),
    CpusetMems: z.string().nullish(),
    NetworkMode: z.string().nullish(),
    RestartPolicy: z.looseObject({ Name: z.string().nullish(), MaximumRetryCount: num }).nullish(),
    AutoRemove: z.boolean().nullish(),
    CapAdd: strings,
    CapDrop: strings,
    Privileged: z.boolean().nullish(),
    ReadonlyRootfs: z.boolean().nullish(),
    PortBindings: z.record(z.string(), z.unknown()).nullish(),
    /** [rows, columns] of the client's terminal, for -t. */
    ConsoleSize: z.array(z.number()).nullish(),
  })
  .loose();

const nanos = z.number().int().nullish();
/** docker's HealthConfig: times in nanoseconds (0: the image's or the default). */
const HealthcheckBodySchema = z
  .object({ Test: z.array(z.string()).nullish(), Interval: nanos, Timeout: nanos, StartPeriod: nanos, StartInterval: nanos, Retries: z.number().int().nullish() })
  .loose();

/** The options' healthcheck from the body's, with dockerd's checks (400s in its words). */
function healthcheckOf(h: z.output<typeof HealthcheckBodySchema> | null | undefined): Healthcheck | undefined {
  if (!h) return undefined;
  const out: Healthcheck = {};
  if (h.Test?.length) out.test = h.Test;
  for (const [field, key] of [['Interval', 'interval'], ['Timeout', 'timeout'], ['StartPeriod', 'startPeriod'], ['StartInterval', 'startInterval']] as const) {
    const v = h[field] ?? 0;
    if (v !== 0 && v < 1e6) throw new ApiError(400, `${field} in Healthcheck cannot be less than 1ms`);
    if (v > 0) out[key] = Math.round(v / 1e6);
  }
  if ((h.Retries ?? 0) < 0) throw new ApiError(400, 'Retries in Healthcheck cannot be negative');
  if (h.Retries) out.retries = h.Retries;
  return out;
}

export const CreateBodySchema = z
  .object({
    Image: z.string({ error: 'an image is required' }).min(1, 'an image is required'),
    Cmd: command,
    Entrypoint: command,
    Env: strings,
    WorkingDir: z.string().nullish(),
    User: z.string().nullish(),
    Hostname: z.string().nullish(),
    Tty: z.boolean().nullish(),
    OpenStdin: z.boolean().nullish(),
    Labels: z.record(z.string(), z.string()).nullish(),
    StopSignal: z.string().nullish(),
    Healthcheck: HealthcheckBodySchema.nullish(),
    Shell: z.array(z.string()).nullish(),
    Volumes: z.record(z.string(), z.unknown()).nullish(),
    HostConfig: HostConfigSchema.nullish(),
  })
  .loose();
export type CreateBody = z.output<typeof CreateBodySchema>;

const words = (c: string[] | string | null | undefined): string[] | undefined =>
  c === null || c === undefined ? undefined : typeof c === 'string' ? c.split(/\s+/).filter(Boolean) : c;

/** A `Binds` entry: `/host:/ctr[:ro|rw|z|Z,...]` (a bind; the client resolved relative paths) or `NAME:/ctr[:opts]` (a volume). */
function bindOf(spec: string): { mount: Mount } | { volume: VolumeRequest } {
  const v = parseVolumeSpec(spec);
  if (v.kind === 'volume') return { volume: { ...(v.name ? { name: v.name } : {}), target: v.target, readonly: v.readonly, ...(v.noCopy ? { noCopy: true } : {}) } };
  if (!v.source.startsWith('/')) throw new ApiError(400, `invalid volume specification: '${spec}': a bind mount's source is an absolute host path`);
  return { mount: { type: 'bind', source: v.source, target: v.target, readonly: v.readonly, recursive: true } };
}

function tmpfsOf(target: string, options: string): Mount {
  const opts = options.split(',').filter(Boolean);
  const size = opts.find((o) => o.startsWith('size='))?.slice(5);
  const mode = opts.find((o) => o.startsWith('mode='))?.slice(5);
  if (size && !/^\d+[kmgKMG%]?$/.test(size)) throw new ApiError(400, `invalid tmpfs size for ${target}: ${JSON.stringify(size)}`);
  if (mode && !/^[0-7]{1,4}$/.test(mode)) throw new ApiError(400, `invalid tmpfs mode for ${target}: ${JSON.stringify(mode)}`);
  return {
    type: 'tmpfs',
    target,
    readonly: opts.includes('ro'),
    ...(size ? { size } : {}),
    ...(mode ? { mode: parseInt(mode, 8) } : {}),
  };
}

function mountsOf(hc: NonNullable<CreateBody['HostConfig']>, volumes: VolumeRequest[]): Mount[] {
  const mounts: Mount[] = [];
  for (const b of (hc.Binds ?? []).map(bindOf)) {
    if ('mount' in b) mounts.push(b.mount);
    else volumes.push(b.volume);
  }
  for (const m of hc.Mounts ?? []) {
    if (m.Type === 'volume') {
      if (m.Source && !VOLUME_NAME.test(m.Source)) throw new ApiError(400, `invalid mount config: ${JSON.stringify(m.Source)} is not a volume name`);
      volumes.push({ ...(m.Source ? { name: m.Source } : {}), target: m.Target, readonly: m.ReadOnly ?? false });
    } else if (m.Type === 'tmpfs') {
      mounts.push({
        type: 'tmpfs',
        target: m.Target,
        readonly: m.ReadOnly ?? false,
        ...(m.TmpfsOptions?.SizeBytes ? { size: m.TmpfsOptions.SizeBytes } : {}),
        ...(m.TmpfsOptions?.Mode ? { mode: m.TmpfsOptions.Mode } : {}),
      });
    } else if (m.Type === 'bind' || !m.Type) {
      if (!m.Source?.startsWith('/')) throw new ApiError(400, `invalid mount config: a bind mount needs an absolute Source (got ${JSON.stringify(m.Source ?? '')})`);
      mounts.push({ type: 'bind', source: m.Source, target: m.Target, readonly: m.ReadOnly ?? false, recursive: true });
    } else {
      throw new ApiError(400, `invalid mount config for type "${m.Type}": nsbox supports bind, volume and tmpfs mounts`);
    }
  }
  for (const [target, options] of Object.entries(hc.Tmpfs ?? {})) mounts.push(tmpfsOf(target, options));
  return mounts;
}

function resourcesOf(hc: NonNullable<CreateBody['HostConfig']>): ContainerOptions['resources'] {
  const r: NonNullable<ContainerOptions['resources']> = {};
  if (hc.Memory) r.memory = hc.Memory;
  // docker: -1 is unlimited swap; a positive value is memory plus swap.
  if (hc.MemorySwap) r.memorySwap = hc.MemorySwap < 0 ? -1 : hc.MemorySwap;
  if (hc.NanoCpus) r.cpus = hc.NanoCpus / 1e9;
  else if (hc.CpuQuota && hc.CpuQuota > 0) r.cpus = hc.CpuQuota / (hc.CpuPeriod || 100_000);
  if (hc.CpuShares) r.cpuShares = hc.CpuShares;
  // docker: 0 and -1 both mean no limit.
  if (hc.PidsLimit && hc.PidsLimit > 0) r.pids = hc.PidsLimit;
  if (hc.CpusetCpus || hc.CpusetMems) r.cpuset = { ...(hc.CpusetCpus ? { cpus: hc.CpusetCpus } : {}), ...(hc.CpusetMems ? { mems: hc.CpusetMems } : {}) };
  return Object.keys(r).length ? r : undefined;
}

function restartOf(p: NonNullable<CreateBody['HostConfig']>['RestartPolicy']): string | undefined {
  const name = p?.Name;
  if (!name || name === 'no') return undefined;
  if (name === 'on-failure' && p?.MaximumRetryCount) return `on-failure:${p.MaximumRetryCount}`;
  return name;
}

/** docker's User: nsbox takes uid[:gid]; "root" is the one name every image has. */
function userOf(user: string): string {
  return user.replace(/^root(?=:|$)/, '0').replace(/:root$/, ':0');
}

/** A terminal of the client's size when it sent one (the CLI's -t does), else the usual 80x24 until a resize. */
function ttyOf(size: number[] | null | undefined): ContainerOptions['tty'] {
  const [rows, cols] = size ?? [];
  return rows && cols && rows > 0 && cols > 0 ? { cols: Math.min(cols, 65535), rows: Math.min(rows, 65535) } : true;
}

/**
 * The body's networking. The docker CLI sends `default` (or `bridge`) when no network is asked
 * for: that is nsbox's default mode (`none` unless NSBOX_DEFAULT_NETWORK=bridge, see
 * lib/network/network-mode.ts), and `bridge` once ports are published (they need one).
 */
function networkOfBody(body: CreateBody, warnings: string[]): NetworkOptions {
  const r = networkRequestOf(body);
  warnings.push(...r.warnings);
  const n = r.network;
  if (n.publishAll) n.ports = publishAllPorts(r.exposedPorts, n.ports);
  const mode = body.HostConfig?.NetworkMode;
  const unnamed = !mode || mode === 'default' || mode === 'bridge';
  const aliased = n.networks.some((a) => a.aliases.length || a.ipv4Address || a.ipv6Address) || n.networks.length > 1;
  if (unnamed && n.mode === 'bridge' && !n.ports.length && !n.publishAll && !aliased && defaultNetworkMode() === 'none') return { ...n, mode: 'none', unasked: true };
  return n;
}

/**
 * The engine's request for a docker create body (`name` from the query). Warnings say what was
 * ignored; `bindSources` are the host paths of `Binds`, which docker makes when missing (a `Mounts`
 * bind must exist).
 */
export function createRequestOf(body: CreateBody, name?: string): { request: CreateRequest; warnings: string[]; bindSources: string[] } {
  const hc = body.HostConfig ?? {};
  const warnings: string[] = [];
  const network = networkOfBody(body, warnings);
  const entrypoint = words(body.Entrypoint);
  const cmd = words(body.Cmd);
  const resources = resourcesOf(hc);
  const volumes: VolumeRequest[] = [];
  const mounts = mountsOf(hc, volumes);
  // `-v /path` arrives here: an anonymous volume unless a bind or volume is already there.
  for (const target of Object.keys(body.Volumes ?? {})) if (![...mounts, ...volumes].some((m) => m.target === target)) volumes.push({ target, readonly: false });
  const restart = restartOf(hc.RestartPolicy);
  const healthcheck = healthcheckOf(body.Healthcheck);
  const options: ContainerOptions = {
    image: body.Image,
    // create only looks the image up: a missing one is a 404, on which the docker CLI pulls and retries.
    pull: 'never',
    ...(cmd && cmd.length ? { command: cmd } : {}),
    // --entrypoint "" arrives as [""]: no entrypoint at all.
    ...(entrypoint ? { entrypoint: entrypoint.filter((e, i) => !(i === 0 && e === '' && entrypoint.length === 1)) } : {}),
    // A bare NAME (no '=') is one the client could not resolve: docker drops it too.
    ...(body.Env && body.Env.length ? { env: body.Env.filter((e) => /^[^=]+=/.test(e)) } : {}),
    ...(body.WorkingDir ? { cwd: body.WorkingDir } : {}),
    ...(body.User ? { user: userOf(body.User) } : {}),
    ...(body.Hostname ? { hostname: body.Hostname } : {}),
    ...(body.Labels && Object.keys(body.Labels).length ? { labels: body.Labels } : {}),
    ...(body.StopSignal ? { stopSignal: body.StopSignal } : {}),
    ...(healthcheck ? { healthcheck } : {}),
    ...(body.Shell && body.Shell.length ? { shell: body.Shell } : {}),
    ...(mounts.length ? { mounts } : {}),
    ...(hc.ReadonlyRootfs ? { readonlyRootfs: true } : {}),
    namespaces: { net: network.mode !== 'host' },
    ...(resources ? { resources } : {}),
    ...(hc.CapAdd && hc.CapAdd.length ? { capAdd: hc.CapAdd } : {}),
    ...(hc.CapDrop && hc.CapDrop.length ? { capDrop: hc.CapDrop } : {}),
    ...(hc.Privileged ? { privileged: true } : {}),
    ...(body.Tty ? { tty: ttyOf(hc.ConsoleSize) } : {}),
  };
  return {
    request: {
      ...(name ? { name } : {}),
      options,
      openStdin: body.OpenStdin ?? false,
      ...(restart ? { restart } : {}),
      autoRemove: hc.AutoRemove ?? false,
      ...(volumes.length ? { volumes } : {}),
      network,
    },
    warnings,
    bindSources: (hc.Binds ?? []).map(bindOf).flatMap((b) => ('mount' in b && b.mount.type === 'bind' ? [b.mount.source] : [])),
  };
}
