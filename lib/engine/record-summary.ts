/**
 * The fields of a container record that say what it is and how it runs (id, name, image, command,
 * times, state, exit, supervisor), and `ContainerSummarySchema`: a record read through those fields
 * alone, the rest passed through unread. `nsbox ps` reads the store that way (container-list.ts),
 * so that listing containers does not build the schema of their options, which is most of what
 * loading the whole record costs. records.ts builds the full record from the same fields.
 */
import * as z from 'zod';
import { digestSchema } from '../storage/digest-schema.js';

export const ContainerIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

/** docker's states; `dead` is a container whose process is gone without a known exit status. */
export const ContainerStateSchema = z.enum(['created', 'running', 'paused', 'exited', 'dead']);
export type ContainerRecordState = z.infer<typeof ContainerStateSchema>;

export const isoTime = z.iso.datetime({ offset: true });
export const absPath = z.string().regex(/^\/[^\0]*$/, 'must be an absolute path');
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
  z
    .object({
      kind: z.literal('process'),
      /** The container's init. */
      pid,
      pidStartTime: startTime,
      /**
       * Its cgroup's directory in each hierarchy, as the process that made it placed them (a
       * relative parent lies beneath that process's own cgroup): where any other process removes it.
       */
      cgroupPaths: z.record(z.string(), absPath).optional(),
    })
    .strict(),
]);
export type Supervisor = z.infer<typeof SupervisorSchema>;

/** The record's fields that ContainerSummarySchema reads (records.ts adds the others). */
export const summaryFields = {
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
  supervisor: SupervisorSchema.optional(),
};

export const oneRoot = (r: { image?: unknown; rootfs?: unknown }): boolean => r.image === undefined || r.rootfs === undefined;
export const oneRootIssue = { message: 'a container has an image or a rootfs, not both', path: ['rootfs'] };

/** A record as a listing reads it: the summary's fields checked as the full record checks them, the others kept unread. */
const port = z.number().int().min(0).max(65535);
/** The published ports of the record's network state, and whether its first network has IPv6: all that `ps` shows of it. */
const SummaryNetwork = z.looseObject({
  state: z
    .looseObject({
      ports: z.array(z.object({ containerPort: port, protocol: z.enum(['tcp', 'udp', 'sctp']), hostIp: z.string(), hostPort: port }).strict()).default([]),
      endpoints: z.array(z.looseObject({ ipv6Address: z.string().optional() })).default([]),
    })
    .optional(),
});

export const ContainerSummarySchema = z.looseObject({ ...summaryFields, network: SummaryNetwork.optional() }).refine(oneRoot, oneRootIssue);
export type ContainerSummary = z.output<typeof ContainerSummarySchema>;
