/**
 * One error shape across the native boundary: the addon constructs `NsboxError` (registered by
 * lib/native.ts) with the errno name as `code`, the number as `errno`, and the `syscall` and `path`
 * that failed. A small hierarchy above it names the situations callers branch on.
 */

export interface NsboxErrorDetails {
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  cause?: unknown;
}

export class NsboxError extends Error {
  override name = 'NsboxError';
  /** errno name ('EPERM'), or an nsbox code ('ERR_INVALID_STATE'). */
  readonly code: string;
  // `declare`: an absent detail is no own property at all, not one whose value is undefined
  // (ava's TAP reporter and other YAML/JSON dumpers choke on undefined values).
  declare readonly errno?: number;
  declare readonly syscall?: string;
  declare readonly path?: string;

  constructor(message: string, details: NsboxErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code ?? 'ERR_NSBOX';
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.path !== undefined) this.path = details.path;
    // The addon builds its errors on the event loop after the syscall failed, with no JavaScript
    // on the stack. Such a stack gets one frame naming its origin: readers that take the first
    // frame (ava's TAP reporter dumps it as `at`, and crashes when there is none) find one. The
    // probe keeps this.stack unread, so a subclass's name still heads it.
    const probe: { stack?: string } = {};
    Error.captureStackTrace(probe, new.target);
    if (!probe.stack?.includes('\n')) {
      this.stack = `${new.target.name}: ${message}\n    at nsbox addon (${details.syscall ?? this.code})`;
    }
  }
}

/** A bad option or argument; `field` names it ('namespaces.user.uidMap.0.size'). */
export class ValidationError extends NsboxError {
  override name = 'ValidationError';
  readonly field: string;
  constructor(message: string, field: string, cause?: unknown) {
    super(message, { code: 'ERR_VALIDATION', cause });
    this.field = field;
  }
}

export class NotFoundError extends NsboxError {
  override name = 'NotFoundError';
  constructor(message: string, details: NsboxErrorDetails = {}) {
    super(message, { code: 'ENOENT', ...details });
  }
}

/**
 * Content whose digest or size is not what was asked for (a registry's blob or manifest, a store's
 * blob, a layer's diff id, an archive member); nothing of it is kept. The one class for all of them,
 * so one `instanceof` catches every such case. `code` is 'DIGEST_MISMATCH' or 'SIZE_MISMATCH';
 * `registry` names the registry (host:port) when the content came from one.
 */
export class DigestMismatchError extends NsboxError {
  override name = 'DigestMismatchError';
  readonly expected: string;
  readonly actual: string;
  readonly registry?: string;
  constructor(
    message: string,
    expected: string,
    actual: string,
    details: Omit<NsboxErrorDetails, 'code'> & { code?: 'DIGEST_MISMATCH' | 'SIZE_MISMATCH'; registry?: string } = {},
  ) {
    const { registry, ...rest } = details;
    super(message, { code: 'DIGEST_MISMATCH', ...rest });
    this.expected = expected;
    this.actual = actual;
    if (registry !== undefined) this.registry = registry;
  }
}

/** An operation that the object's current state does not allow (start twice, exec after exit). */
export class InvalidStateError extends NsboxError {
  override name = 'InvalidStateError';
  constructor(message: string) {
    super(message, { code: 'ERR_INVALID_STATE' });
  }
}

/** The operation asked for is already the case (start a running container, stop a stopped one): docker's 304. */
export class NotModifiedError extends NsboxError {
  override name = 'NotModifiedError';
  constructor(message: string) {
    super(message, { code: 'ERR_NOT_MODIFIED' });
  }
}

/** A container name already taken by another container (docker's wording and 409 meaning). */
export class ConflictError extends NsboxError {
  override name = 'ConflictError';
  /** The name asked for, without the leading "/". */
  readonly containerName: string;
  /** The container that holds it. */
  readonly containerId: string;
  constructor(containerName: string, containerId: string) {
    super(
      `Conflict. The container name "/${containerName}" is already in use by container "${containerId}". ` +
        'You have to remove (or rename) that container to be able to reuse that name.',
      { code: 'ERR_CONFLICT' },
    );
    this.containerName = containerName;
    this.containerId = containerId;
  }
}

/**
 * A network name, subnet or address already taken (docker's 409): "network with name x already
 * exists", "Pool overlaps with other one on this address space", "Address already in use".
 */
export class NetworkConflictError extends NsboxError {
  override name = 'NetworkConflictError';
  constructor(message: string) {
    super(message, { code: 'ERR_CONFLICT' });
  }
}

/** A corrupt, truncated or unknown image archive; `path` names the archive when it is a file. */
export class ArchiveError extends NsboxError {
  override name = 'ArchiveError';
  constructor(message: string, details: NsboxErrorDetails = {}) {
    super(message, { code: 'ERR_ARCHIVE', ...details });
  }
}

/**
 * A readiness wait (`waitFor`) that did not end well: `timeout` when it ran out of time, `exited`
 * when the container ended first. The message names what was awaited and how far it got, then the
 * container's last log lines (also in `logTail`).
 */
export class WaitError extends NsboxError {
  override name = 'WaitError';
  readonly awaited: string;
  readonly logTail: string[];
  constructor(message: string, details: { code: 'ERR_WAIT_TIMEOUT' | 'ERR_WAIT_EXITED' | 'ERR_WAIT_FAILED'; awaited: string; logTail: string[]; cause?: unknown }) {
    const tail = details.logTail.length ? `\n--- last ${details.logTail.length} log lines ---\n${details.logTail.join('\n')}` : '\n(the container printed nothing)';
    super(`${message}${tail}`, { code: details.code, ...(details.cause === undefined ? {} : { cause: details.cause }) });
    this.awaited = details.awaited;
    this.logTail = details.logTail;
  }
}

/**
 * What the Docker API's HTTP layer itself refuses (an unknown route, a bad query), with the status
 * to answer; the library's own errors are mapped to a status by class (lib/api/api-error.ts).
 */
export class ApiError extends NsboxError {
  override name = 'ApiError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message, { code: 'ERR_API' });
    this.status = status;
  }
}

/** Whether `err` carries one of `codes` as its `code`: an errno name ('ENOENT') or an nsbox code. */
export const isCode = (err: unknown, ...codes: string[]): boolean =>
  codes.includes((err as NodeJS.ErrnoException | undefined)?.code ?? '');

/**
 * The catch handler of a case the caller names (its comment says why that case is no failure): an
 * error whose code is one of `codes` becomes undefined, any other is rethrown.
 */
export function ignoreCode(...codes: string[]): (err: unknown) => undefined {
  return (err) => {
    if (isCode(err, ...codes)) return undefined;
    throw err;
  };
}

/** The catch handler for "no such object": a NotFoundError becomes undefined, any other error is rethrown. */
export function ignoreNotFound(err: unknown): undefined {
  if (err instanceof NotFoundError) return undefined;
  throw err;
}

/**
 * The catch handler of a best-effort step (a cache, a hint) whose failure the caller survives: the
 * error is reported as a process warning (code NSBOX_WARNING) rather than lost.
 */
export function reportError(what: string): (err: unknown) => void {
  return (err) => process.emitWarning(`${what}: ${(err as Error)?.message ?? String(err)}`, { code: 'NSBOX_WARNING' });
}

/**
 * The catch handler of a cleanup on a path that already fails: the first error is the one thrown,
 * and a cleanup that fails too is reported as a process warning (code NSBOX_CLEANUP) rather than
 * lost. What is already gone (ENOENT, ESRCH) is no failure of the cleanup.
 */
export function reportCleanupError(what: string): (err: unknown) => void {
  return (err) => {
    if (isCode(err, 'ENOENT', 'ESRCH')) return;
    process.emitWarning(`${what}: ${(err as Error)?.message ?? String(err)}`, { code: 'NSBOX_CLEANUP' });
  };
}
