/**
 * The runtime-spec `config.json` (Linux), as zod reads it: fields nsbox does not know are ignored
 * (zod strips them), fields it knows are checked before anything is created, and a bad one is a
 * ValidationError naming its path ("process.user.uid: expected number").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { NotFoundError, ValidationError } from '../errors.js';

const u32 = z.number().int().min(0).max(0xffffffff);
const IdMapping = z.object({ containerID: u32, hostID: u32, size: u32.min(1) });
export type OciIdMapping = z.output<typeof IdMapping>;

const Hook = z.object({
  path: z.string().startsWith('/', 'must be an absolute path'),
  args: z.array(z.string()).optional(),
  env: z.array(z.string()).optional(),
  timeout: z.number().int().positive().optional(),
});
export type OciHook = z.output<typeof Hook>;

export const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

const Rlimit = z.object({
  type: z.string().regex(/^RLIMIT_[A-Z]+$/, 'must be RLIMIT_<NAME>'),
  // u64: 2^64-1 (unlimited) reads as a double past 2^53.
  hard: z.number().min(0),
  soft: z.number().min(0),
});

export const ProcessSchema = z.object({
  terminal: z.boolean().optional(),
  consoleSize: z.object({ height: u32, width: u32 }).optional(),
  user: z.object({ uid: u32, gid: u32, umask: u32.optional(), additionalGids: z.array(u32).optional() }).default({ uid: 0, gid: 0 }),
  args: z.array(z.string()).min(1, 'must name a program'),
  env: z.array(z.string()).optional(),
  cwd: z.string().startsWith('/', 'must be an absolute path').default('/'),
  capabilities: z
    .object({
      bounding: z.array(z.string()).optional(),
      effective: z.array(z.string()).optional(),
      inheritable: z.array(z.string()).optional(),
      permitted: z.array(z.string()).optional(),
      ambient: z.array(z.string()).optional(),
    })
    .optional(),
  rlimits: z.array(Rlimit).optional(),
  noNewPrivileges: z.boolean().optional(),
  apparmorProfile: z.string().optional(),
  oomScoreAdj: z.number().int().min(-1000).max(1000).optional(),
  selinuxLabel: z.string().optional(),
});
export type OciProcess = z.output<typeof ProcessSchema>;

const Mount = z.object({
  destination: z.string().min(1),
  type: z.string().optional(),
  source: z.string().optional(),
  options: z.array(z.string()).optional(),
  uidMappings: z.array(IdMapping).optional(),
  gidMappings: z.array(IdMapping).optional(),
});
export type OciMount = z.output<typeof Mount>;

export const NAMESPACE_TYPES = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'] as const;
const Namespace = z.object({ type: z.enum(NAMESPACE_TYPES), path: z.string().optional() });

const Device = z.object({
  type: z.enum(['c', 'b', 'u', 'p']),
  path: z.string().startsWith('/', 'must be an absolute path'),
  major: z.number().int().min(0).optional(),
  minor: z.number().int().min(0).optional(),
  fileMode: z.number().int().min(0).max(0o7777).optional(),
  uid: u32.optional(),
  gid: u32.optional(),
});
export type OciDevice = z.output<typeof Device>;

// int64/uint64 fields: JSON numbers past 2^53 read as doubles (the unlimited 2^64-1 among them).
const int64 = z.number();
export const LinuxResourcesSchema = z.object({
  devices: z.array(z.object({ allow: z.boolean(), type: z.string().optional(), major: int64.nullish(), minor: int64.nullish(), access: z.string().optional() })).optional(),
  memory: z.object({ limit: int64.optional(), reservation: int64.optional(), swap: int64.optional(), kernel: int64.optional(), kernelTCP: int64.optional(), swappiness: int64.optional(), disableOOMKiller: z.boolean().optional() }).optional(),
  cpu: z.object({ shares: int64.optional(), quota: int64.optional(), period: int64.optional(), realtimeRuntime: int64.optional(), realtimePeriod: int64.optional(), cpus: z.string().optional(), mems: z.string().optional(), idle: int64.optional() }).optional(),
  pids: z.object({ limit: int64 }).optional(),
  blockIO: z.object({ weight: int64.optional() }).optional(),
  hugepageLimits: z.array(z.object({ pageSize: z.string(), limit: int64 })).optional(),
  network: z.object({ classID: u32.optional(), priorities: z.array(z.object({ name: z.string(), priority: u32 })).optional() }).optional(),
  unified: z.record(z.string(), z.string()).optional(),
});
export type OciResources = z.output<typeof LinuxResourcesSchema>;

export const ConfigSchema = z.object({
  // The runtime-spec version the config follows, a SemVer 2.0 version: nsbox-runc reads 1.x.
  ociVersion: z.string().regex(/^1\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/, 'expected a runtime-spec version 1.x.y (SemVer)'),
  process: ProcessSchema.optional(),
  root: z.object({ path: z.string().min(1), readonly: z.boolean().optional() }),
  hostname: z.string().optional(),
  domainname: z.string().optional(),
  mounts: z.array(Mount).default([]),
  hooks: z.object(Object.fromEntries(HOOK_KINDS.map((k) => [k, z.array(Hook).optional()])) as Record<HookKind, z.ZodOptional<z.ZodArray<typeof Hook>>>).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  linux: z
    .object({
      namespaces: z.array(Namespace).default([]),
      uidMappings: z.array(IdMapping).optional(),
      gidMappings: z.array(IdMapping).optional(),
      devices: z.array(Device).optional(),
      cgroupsPath: z.string().optional(),
      resources: LinuxResourcesSchema.optional(),
      sysctl: z.record(z.string(), z.string()).optional(),
      seccomp: z.unknown().optional(),
      maskedPaths: z.array(z.string()).optional(),
      readonlyPaths: z.array(z.string()).optional(),
      rootfsPropagation: z.enum(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable']).optional(),
      mountLabel: z.string().optional(),
      personality: z.object({ domain: z.enum(['LINUX', 'LINUX32']), flags: z.array(z.string()).optional() }).optional(),
      timeOffsets: z.record(z.string(), z.object({ secs: int64.optional(), nanosecs: int64.optional() })).optional(),
    })
    .default({ namespaces: [] }),
});
export type OciConfig = z.output<typeof ConfigSchema>;

/** A parsed value or a ValidationError naming the first bad field. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const at = issue.path.map(String).join('.');
  throw new ValidationError(`${what}: ${at ? `${at}: ` : ''}${issue.message}`, at || what, r.error);
}

/** Reads and checks `<bundle>/config.json`. */
export function loadConfig(bundle: string): OciConfig {
  const file = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`JSON specification file ${file} not found`, { path: file });
    throw e;
  }
  return parseConfigText(text);
}

/** config.json's text, parsed and checked (loadConfig without the read). */
export function parseConfigText(text: string): OciConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ValidationError(`invalid config.json: ${(e as Error).message}`, 'config.json', e);
  }
  return parseWith(ConfigSchema, json, 'invalid config.json');
}
