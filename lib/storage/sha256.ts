/** sha256 as a digest string, apart from digest.ts (which re-exports it) so that zod-free code can hash without digest-schema.ts. */
import { createHash } from 'node:crypto';

export const sha256 = (data: string | Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
