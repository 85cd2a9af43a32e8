/**
 * `ContainerRecord`: what the engine keeps about one named container, in
 * `<root>/containers/<id>/record.json`. Read back through the same schema, options included, so a
 * record edited by hand or written by another version fails loudly instead of half-working.
 */
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { ContainerOptionsSchema, type ContainerOptions } from '../runtime/options.js';
import { digestSchema } from '../storage/digest.js';
import { RestartPolicySchema } from './restart-policy.js';
import { VolumeUseSchema } from './volumes.js';

export const ContainerIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

/** docker's states; `dead` is a container whose process is gone without a known exit status. */
export const ContainerStateSchema = z.enum(['created', 'running', 'paused', 'exited', 'dead']);
export type ContainerRecordState = z.infer<typeof ContainerStateSchema>;

const isoTime = z.iso.datetime({ offset: true });
const absPath = z.string().regex(/^\/[^\0]*$/, 'must be an absolute path');
const pid = z.number().int().min(1).max(2 ** 22);
/** Field 22 of /proc/PID/stat: clock ticks after boot. With the pid it names one process for good. */
const startTime = z.number().int().nonnegative();

/** Who keeps the container's process: a detached `nsbox-shim`, or a Node process (the SDK). */
export const SupervisorSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('shim'),
      /** The shim's pid. */
      pid,
      /** The shim's directory; it writes `exit.json` there when the container ends. */
      bundle: absPath,
      pidStartTime: startTime.optional(),
    })
    .strict(),
  z.object({ kind: z.literal('process'), /** The container's init. */ pid, pidStartTime: startTime }).strict(),
]);
export type Supervisor = z.infer<typeof SupervisorSchema>;

/** The options are kept as given (so defaults stay the runtime's) but must pass ContainerOptionsSchema. */
const StoredOptions = z
  .custom<ContainerOptions>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'must be an object')
  .superRefine((v, ctx) => {
    const r = ContainerOptionsSchema.safeParse(v);
    if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  });

const RecordObject = z
  .object({
    id: ContainerIdSchema,
    /** Unique; stored without docker's leading "/". */
    name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/, 'must be [a-zA-Z0-9][a-zA-Z0-9_.-]+'),
    image: z.object({ ref: z.string().min(1), digest: digestSchema }).strict().optional(),
    rootfs: absPath.optional(),
    entrypoint: z.array(z.string()).default([]),
    command: z.array(z.string()).default([]),
    created: isoTime,
    startedAt: isoTime.optional(),
    finishedAt: isoTime.optional(),
    state: ContainerStateSchema.default('created'),
    /** null while it runs, and when a signal ended it (then `signal` names it). */
    exitCode: z.number().int().nullable().default(null),
    signal: z.string().regex(/^SIG[A-Z0-9+-]+$/).nullable().default(null),
    oomKilled: z.boolean().default(false),
    /** Why the state is what it is, when nsbox decided it (e.g. `dead`). */
    error: z.string().optional(),
    restartCount: z.number().int().nonnegative().default(0),
    restartPolicy: RestartPolicySchema.default({ name: 'no' }),
    /** Stopped by `stop` (docker's HasBeenManuallyStopped): an unless-stopped container stays down. */
    manuallyStopped: z.boolean().default(false),
    options: StoredOptions.default({}),
    /** docker's -i: its stdin is a pipe that attach clients write to. */
    openStdin: z.boolean().default(false),
    /** docker's --rm: removed once it has exited. */
    autoRemove: z.boolean().default(false),
    supervisor: SupervisorSchema.optional(),
    /** The volumes bound in (their binds are in options.mounts): anonymous ones go with `rm -v`. */
    volumes: z.array(VolumeUseSchema).default([]),
  })
  .strict();

const oneRoot = (r: { image?: unknown; rootfs?: unknown }) => r.image === undefined || r.rootfs === undefined;
const oneRootIssue = { message: 'a container has an image or a rootfs, not both', path: ['rootfs'] };

export const ContainerRecordSchema = RecordObject.refine(oneRoot, oneRootIssue);
export type ContainerRecord = z.output<typeof ContainerRecordSchema>;

/** What `ContainerStore.create` takes: the id, name and creation time are filled in when absent. */
export const NewContainerRecordSchema = RecordObject.extend({
  id: ContainerIdSchema.optional(),
  name: z.string().optional(),
  created: isoTime.optional(),
}).refine(oneRoot, oneRootIssue);
export type NewContainerRecord = z.input<typeof NewContainerRecordSchema>;

/**
 * A random 64-hex id. Like docker, never one whose short (12) form is all digits, which tools could
 * take for a number.
 */
export function newContainerId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    if (!/^\d{12}/.test(id)) return id;
  }
}
