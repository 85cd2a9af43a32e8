/**
 * The shape of a sha256 digest (`sha256:<64 lowercase hex>`), without the hashing: what reads the
 * store's paths and records needs, without loading node:crypto (digest.ts hashes, and re-exports these).
 */
import * as z from 'zod';
import { ValidationError } from '../errors.js';

const pattern = /^sha256:[0-9a-f]{64}$/;

export const digestSchema = z.string().regex(pattern, 'expected sha256:<64 hex digits>');
export type Digest = z.infer<typeof digestSchema>;

/** Checks a digest string; other algorithms are refused (the store only keeps sha256). */
export function parseDigest(digest: string, field = 'digest'): { algorithm: 'sha256'; hex: string } {
  if (!pattern.test(digest)) {
    throw new ValidationError(`${field}: "${digest}" is not a sha256 digest (sha256:<64 hex digits>)`, field);
  }
  return { algorithm: 'sha256', hex: digest.slice(7) };
}
