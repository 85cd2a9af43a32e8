/** Restart policies as `docker run --restart` takes them: no, on-failure[:N], always, unless-stopped. */
import * as z from 'zod';
import { ValidationError } from '../errors.js';

export const RestartPolicySchema = z
  .object({
    name: z.enum(['no', 'on-failure', 'always', 'unless-stopped']),
    /** on-failure only: give up after this many restarts (0 or absent: no limit). */
    maximumRetryCount: z.number().int().nonnegative().optional(),
  })
  .strict()
  .refine((p) => p.maximumRetryCount === undefined || p.name === 'on-failure', {
    message: 'a maximum retry count is only allowed with on-failure',
    path: ['maximumRetryCount'],
  });
export type RestartPolicy = z.infer<typeof RestartPolicySchema>;

/** 'on-failure:3' → { name: 'on-failure', maximumRetryCount: 3 }. */
export function parseRestartPolicy(text: string): RestartPolicy {
  const m = /^(no|on-failure|always|unless-stopped)(?::(\d+))?$/.exec(text);
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) {
    throw new ValidationError(`invalid restart policy "${text}": use no, on-failure[:max-retries], always or unless-stopped`, 'restart');
  }
  const name = m[1] as RestartPolicy['name'];
  return m[2] === undefined ? { name } : { name, maximumRetryCount: Number(m[2]) };
}
