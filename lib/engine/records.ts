/**
 * `ContainerRecord`: what the engine keeps about one named container, in
 * `<root>/containers/<id>/record.json`. Read back through the same schema, options included, so a
 * record edited by hand or written by another version fails loudly instead of half-working.
 */
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { ContainerOptionsSchema, type ContainerOptions } from '../runtime/options.js';
import { ContainerIdSchema, isoTime, oneRoot, oneRootIssue, summaryFields } from './record-summary.js';
import { RestartPolicySchema } from './restart-policy.js';
import { VolumeUseSchema } from './volumes.js';
import { NetworkOptionsSchema, NetworkStateSchema } from '../network/schemas.js';

/**
 * The container's networking: what it asked for, and what its current (or last) start got. Absent
 * on records made before networking: `namespaces.net` in the options says none or host.
 */
export const RecordNetworkSchema = z.object({ options: NetworkOptionsSchema, state: NetworkStateSchema.optional() }).strict();
export type RecordNetwork = z.output<typeof RecordNetworkSchema>;

export { ContainerIdSchema, ContainerStateSchema, SupervisorSchema, type ContainerRecordState, type Supervisor } from './record-summary.js';

/** The options are kept as given (so defaults stay the runtime's) but must pass ContainerOptionsSchema. */
const StoredOptions = z
  .custom<ContainerOptions>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'must be an object')
  .superRefine((v, ctx) => {
    const r = ContainerOptionsSchema.safeParse(v);
    if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  });

const RecordObject = z
  .object({
    ...summaryFields,
    restartPolicy: RestartPolicySchema.default({ name: 'no' }),
    /** Stopped by `stop` (docker's HasBeenManuallyStopped): an unless-stopped container stays down. */
    manuallyStopped: z.boolean().default(false),
    options: StoredOptions.default({}),
    /** docker's -i: its stdin is a pipe that attach clients write to. */
    openStdin: z.boolean().default(false),
    /** docker's --rm: removed once it has exited. */
    autoRemove: z.boolean().default(false),
    /** That removal failed with this (docker's removal error): a wait for the removal ends with it. */
    removalError: z.string().optional(),
    /** The volumes bound in (their binds are in options.mounts): anonymous ones go with `rm -v`. */
    volumes: z.array(VolumeUseSchema).default([]),
    network: RecordNetworkSchema.optional(),
  })
  .strict();

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
