/** The zod schema of a sha256 digest (digest-format.ts's pattern), for the records that hold one. */
import * as z from 'zod';
import { DIGEST_PATTERN } from './digest-format.js';

export const digestSchema = z.string().regex(DIGEST_PATTERN, 'expected sha256:<64 hex digits>');
export type Digest = z.infer<typeof digestSchema>;
