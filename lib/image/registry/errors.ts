/**
 * Registry failures: one class for what the registry (or the network to it) said, one for content
 * whose digest or size is not what the manifest promised. `code` is the Distribution error code
 * ('MANIFEST_UNKNOWN', 'UNAUTHORIZED', 'BLOB_UNKNOWN', …), an errno name for network failures
 * ('ECONNREFUSED'), or 'DIGEST_MISMATCH' / 'SIZE_MISMATCH' / 'TRUNCATED'.
 */
import { NsboxError } from '../../errors.js';

export interface RegistryErrorDetails {
  /** Host (and port) of the registry: `127.0.0.1:5000`. */
  registry: string;
  code: string;
  /** HTTP status, when there was a response. */
  status?: number;
  cause?: unknown;
}

export class RegistryError extends NsboxError {
  override name = 'RegistryError';
  readonly registry: string;
  readonly status?: number;

  constructor(message: string, details: RegistryErrorDetails) {
    super(message, { code: details.code, cause: details.cause });
    this.registry = details.registry;
    if (details.status !== undefined) this.status = details.status;
  }
}

export interface DigestMismatchDetails {
  registry: string;
  expected: string;
  actual: string;
  /** 'DIGEST_MISMATCH' (content differs) or 'SIZE_MISMATCH' (length differs). */
  code?: 'DIGEST_MISMATCH' | 'SIZE_MISMATCH';
}

export class DigestMismatchError extends NsboxError {
  override name = 'DigestMismatchError';
  readonly registry: string;
  readonly expected: string;
  readonly actual: string;

  constructor(message: string, details: DigestMismatchDetails) {
    super(message, { code: details.code ?? 'DIGEST_MISMATCH' });
    this.registry = details.registry;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}
