import { NsboxError } from '../errors.js';

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
