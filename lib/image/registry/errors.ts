/**
 * Registry failures: what the registry (or the network to it) said. Content whose digest or size is
 * not what the manifest promised is the store's DigestMismatchError (lib/errors.ts), with `registry`
 * set. `code` is the Distribution error code
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

export { DigestMismatchError } from '../../errors.js';
