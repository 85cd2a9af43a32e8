/**
 * `ContainerOptions`: what a caller may ask of a container, validated with zod at the boundary.
 * A bad option is a `ValidationError` naming the field.
 */
import * as z from 'zod';
import { ValidationError } from '../errors.js';
import { ResourcesSchema } from '../cgroup/resources.js';
import { SeccompOption } from './seccomp/profile.js';

const absPath = z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute path').refine((p) => !p.includes('\0'), 'must not contain NUL');
const noNul = z.string().refine((s) => !s.includes('\0'), 'must not contain NUL');

const IdMapEntry = z.object({
  containerID: z.number().int().nonnegative(),
  hostID: z.number().int().nonnegative(),
  size: z.number().int().positive(),
});
export type IdMapEntry = z.infer<typeof IdMapEntry>;

const UserNamespace = z.union([
  z.boolean(),
  z.object({ uidMap: z.array(IdMapEntry).min(1).max(340).optional(), gidMap: z.array(IdMapEntry).min(1).max(340).optional() }).strict(),
]);

/**
 * Each namespace is private (true, the default) or shared with the host (false); `user` is off by
 * default. `net` may also be the path of a network namespace to be born in (a bind-mounted netns
 * file, as lib/network makes for bridge networking): the container joins it instead of a new one.
 */
const Namespaces = z
  .object({
    pid: z.boolean().default(true),
    mount: z.boolean().default(true),
    net: z.union([z.boolean(), absPath]).default(true),
    ipc: z.boolean().default(true),
    uts: z.boolean().default(true),
    cgroup: z.boolean().default(true),
    time: z.boolean().default(false),
    user: UserNamespace.default(false),
  })
  .strict();

const BindMount = z
  .object({ type: z.literal('bind'), source: absPath, target: absPath, readonly: z.boolean().default(false), recursive: z.boolean().default(true) })
  .strict();
const TmpfsMount = z
  .object({
    type: z.literal('tmpfs'),
    target: absPath,
    size: z.union([z.number().int().positive(), z.string().regex(/^\d+[kmgKMG%]?$/)]).optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
    readonly: z.boolean().default(false),
  })
  .strict();
export const MountSchema = z.discriminatedUnion('type', [BindMount, TmpfsMount]);
export type Mount = z.infer<typeof MountSchema>;

const StdioKind = z.union([z.enum(['pipe', 'inherit', 'ignore']), z.number().int().nonnegative()]);
export type StdioKind = z.infer<typeof StdioKind>;
const Stdio = z.union([StdioKind, z.tuple([StdioKind, StdioKind, StdioKind])]);

const User = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^\d+(:\d+)?$/, 'must be uid or uid:gid (numbers)'),
  z.object({ uid: z.number().int().nonnegative(), gid: z.number().int().nonnegative().optional(), groups: z.array(z.number().int().nonnegative()).optional() }).strict(),
]);

const Tty = z.union([z.boolean(), z.object({ cols: z.number().int().positive().max(65535), rows: z.number().int().positive().max(65535) }).strict()]);

const ms = z.number().int().nonnegative().max(2 ** 31);

/**
 * docker's HEALTHCHECK (HealthConfig), times in milliseconds. `test`: ['CMD', program, ...args],
 * ['CMD-SHELL', 'command'] (run by /bin/sh -c), ['NONE'] (no check, not even the image's); absent or
 * [] takes the image's. A time or `retries` of 0 takes the image's, else docker's default (interval
 * and timeout 30 s, start period 0, start interval 5 s, retries 3).
 */
export const HealthcheckSchema = z
  .object({
    test: z
      .array(noNul)
      .refine((t) => t.length === 0 || ['NONE', 'CMD', 'CMD-SHELL'].includes(t[0]!), 'must start with NONE, CMD or CMD-SHELL')
      .refine((t) => t[0] !== 'CMD-SHELL' || t.length === 2, 'CMD-SHELL takes one command string')
      .refine((t) => t[0] !== 'CMD' || t.length > 1, 'CMD takes a program')
      .optional(),
    interval: ms.optional(),
    timeout: ms.optional(),
    startPeriod: ms.optional(),
    startInterval: ms.optional(),
    retries: z.number().int().nonnegative().optional(),
  })
  .strict();
export type Healthcheck = z.infer<typeof HealthcheckSchema>;

export const ContainerOptionsSchema = z
  .object({
    /** The root file system (a directory). Without rootfs, layers or image: a host sandbox built from read-only binds of /usr, /etc, … */
    rootfs: absPath.optional(),
    /** Read-only directories, topmost first, joined by overlayfs under a writable layer that is discarded with the container. */
    layers: z.array(absPath).min(1).max(500).optional(),
    /** An image reference ('busybox', 'host:5000/app:1.0', 'name@sha256:…'); its config gives the defaults. */
    image: z.string().min(1).optional(),
    /** Copy the layers into one directory instead of an overlay (automatic where the kernel has no overlayfs). */
    copyLayers: z.boolean().default(false),
    /**
     * The writable layer is deleted with the container (docker's --rm): its overlay is mounted
     * `volatile`, so the container's exit does not wait for a sync of the host file system under it.
     * A crash of the machine may then lose its writes (they go with it anyway). A restart in the same
     * boot mounts it again (lib/runtime/volatile-layer.ts); after a reboot the start is refused.
     * Without effect where the kernel has no `volatile` (before 5.10) or the root is not an overlay.
     */
    volatileLayer: z.boolean().default(false),
    /** When to pull `image`: 'missing' (default), 'always', 'never'. */
    pull: z.enum(['missing', 'always', 'never']).default('missing'),
    /** The program and its arguments (with an image: replaces its Cmd). */
    command: z.array(noNul).optional(),
    /** Replaces the image's Entrypoint (and drops its Cmd), as `docker run --entrypoint`. */
    entrypoint: z.array(noNul).optional(),
    /** docker's HEALTHCHECK, over the image's: run by the container's supervisor (see Healthcheck). */
    healthcheck: HealthcheckSchema.optional(),
    /** docker's Config.Shell: what runs a CMD-SHELL healthcheck (default: the image's SHELL, else /bin/sh -c). */
    shell: z.array(noNul).min(1).optional(),
    /** The signal stop() sends first (default: the image's StopSignal, else SIGTERM). */
    stopSignal: z.string().regex(/^(SIG)?[A-Z0-9+-]+$/, 'must be a signal name').optional(),
    labels: z.record(z.string(), z.string()).optional(),
    env: z.union([z.record(z.string().regex(/^[^=\0]+$/, 'bad variable name'), noNul), z.array(noNul.regex(/^[^=]+=/, 'must be NAME=value'))]).optional(),
    cwd: absPath.optional(),
    user: User.optional(),
    hostname: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'must be a valid host name').optional(),
    namespaces: Namespaces.prefault({}),
    mounts: z.array(MountSchema).default([]),
    readonlyRootfs: z.boolean().optional(),
    tty: Tty.default(false),
    stdio: Stdio.default('pipe'),
    /** cgroup limits and priorities (memory, cpus, cpuWeight/cpuShares, pids, cpuset, blkio). */
    resources: z.lazy(() => ResourcesSchema).optional(),
    /** Parent of the container's cgroup: relative to this process's own cgroup, or absolute. Default $NSBOX_CGROUP_PARENT or 'nsbox'. */
    cgroupParent: z.string().min(1).optional(),
    /** Capabilities on top of docker's default set ('NET_ADMIN', 'CAP_SYS_PTRACE', 'ALL'). */
    capAdd: z.array(z.string()).optional(),
    /** Capabilities taken from it ('ALL' drops every one). */
    capDrop: z.array(z.string()).optional(),
    /** Capabilities a non-root `user` keeps (ambient); they must be in the container's set. */
    ambientCapabilities: z.array(z.string()).optional(),
    /** no_new_privs (default true): setuid binaries and file capabilities grant nothing. */
    noNewPrivileges: z.boolean().default(true),
    /** 'default' (docker's profile), 'unconfined', or a docker / OCI seccomp profile. */
    seccomp: SeccompOption.default('default'),
    /** All capabilities, no seccomp, no masked paths, no no_new_privs: docker's --privileged. */
    privileged: z.boolean().default(false),
    /** Container id; a random 64-hex id when omitted. */
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be [A-Za-z0-9_.-], at most 128 characters').optional(),
    /** Where per-container runtime state lives (default /run/nsbox as root, else $XDG_RUNTIME_DIR/nsbox or the temp dir). */
    runRoot: absPath.optional(),
    /** The image store `image` is looked up (and pulled) in (default: $NSBOX_ROOT, /var/lib/nsbox as root). */
    imageRoot: absPath.optional(),
    /**
     * A program that wires the container's own network namespace before the container runs
     * (lib/network/rootless-net.ts: pasta, for rootless networking). It runs once the id maps are
     * written, `{pid}` in `argv` standing for the container's pid, says it is ready by writing to its
     * fd 3, and dies with the thread that spawned it; its pid is written to `pidFile`.
     */
    netHelper: z.object({ argv: z.tuple([absPath], noNul), pidFile: absPath }).strict().optional(),
  })
  .strict();

export type ContainerOptions = z.input<typeof ContainerOptionsSchema>;
export type ContainerConfig = z.output<typeof ContainerOptionsSchema>;

/** Parses with `schema`, turning the first problem into a `ValidationError` that names the field. */
export function validate<T extends z.ZodTypeAny>(schema: T, input: unknown, what: string): z.output<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join('.') || what;
  throw new ValidationError(`invalid ${what}: ${field}: ${issue.message}`, field, r.error);
}

export const ExecOptionsSchema = z
  .object({
    env: z.union([z.record(z.string().regex(/^[^=\0]+$/), noNul), z.array(noNul.regex(/^[^=]+=/, 'must be NAME=value'))]).optional(),
    cwd: absPath.optional(),
    user: User.optional(),
    tty: Tty.default(false),
    stdio: Stdio.default('pipe'),
    /** Outlives this Node process (no parent-death signal), its stdio /dev/null: docker's exec -d. */
    detach: z.boolean().default(false),
    /** All capabilities, no seccomp filter, no no_new_privs, whatever the container has: docker's exec --privileged. */
    privileged: z.boolean().default(false),
  })
  .strict();
export type ExecOptions = z.input<typeof ExecOptionsSchema>;
export type ExecConfig = z.output<typeof ExecOptionsSchema>;
