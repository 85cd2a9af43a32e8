/**
 * The shape of a sha256 digest (`sha256:<64 lowercase hex>`), without the hashing: what reads the
 * store's paths and records needs, without loading node:crypto (digest.ts hashes, and re-exports
 * these) or zod (digest-schema.ts; `nsbox ps` reads the store's layout without a schema library).
 */
import { ValidationError } from '../errors.js';

export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
const pattern = DIGEST_PATTERN;

/** Checks a digest string; other algorithms are refused (the store only keeps sha256). */
export function parseDigest(digest: string, field = 'digest'): { algorithm: 'sha256'; hex: string } {
  if (!pattern.test(digest)) {
    throw new ValidationError(`${field}: "${digest}" is not a sha256 digest (sha256:<64 hex digits>)`, field);
  }
  return { algorithm: 'sha256', hex: digest.slice(7) };
}
