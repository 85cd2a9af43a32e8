/**
 * Errors as the Docker API reports them: a status code and `{"message": ...}`. `ApiError` is for
 * what the HTTP layer itself refuses (an unknown route, a bad query); the library's errors are
 * mapped by class, so the engine never needs to know about HTTP.
 */
import { ApiError, ConflictError, InvalidStateError, NetworkConflictError, NotFoundError, NotModifiedError, ValidationError } from '../errors.js';

export { ApiError };

/** The status docker would answer with for `err`. */
export function statusOf(err: unknown): number {
  if (err instanceof ApiError) return err.status;
  if (err instanceof NotModifiedError) return 304;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError || err instanceof NetworkConflictError || err instanceof InvalidStateError) return 409;
  if (err instanceof ValidationError) return 400;
  return 500;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
