/** Errors of the on-disk store, in the NsboxError shape (code, path, cause). */
import { NsboxError, type NsboxErrorDetails } from '../errors.js';

export { DigestMismatchError, isCode } from '../errors.js';

/**
 * A layer tar that tries to do what a layer may not (leave its directory, write through a link) or
 * that cannot be read; `entry` names the offending tar entry when there is one.
 */
export class LayerError extends NsboxError {
  override name = 'LayerError';
  readonly entry?: string;
  constructor(message: string, details: NsboxErrorDetails & { entry?: string } = {}) {
    const { entry, ...rest } = details;
    super(message, { code: 'ERR_LAYER', ...rest });
    if (entry !== undefined) this.entry = entry;
  }
}

/** Wraps a Node fs error as an NsboxError that keeps errno, syscall and path. */
export function fsError(err: unknown, what: string, file: string): NsboxError {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof NsboxError) return e;
  return new NsboxError(`${what} ${file}: ${e.code ?? e.message}`, {
    code: e.code ?? 'ERR_NSBOX',
    ...(e.errno === undefined ? {} : { errno: Math.abs(e.errno) }),
    ...(e.syscall === undefined ? {} : { syscall: e.syscall }),
    path: file,
    cause: err,
  });
}
