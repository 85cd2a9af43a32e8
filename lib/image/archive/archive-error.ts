/** The one error an archive that cannot be loaded or written raises (besides digest mismatches). */
import { NsboxError, type NsboxErrorDetails } from '../../errors.js';

/** A corrupt, truncated or unknown image archive; `path` names the archive when it is a file. */
export class ArchiveError extends NsboxError {
  override name = 'ArchiveError';
  constructor(message: string, details: NsboxErrorDetails = {}) {
    super(message, { code: 'ERR_ARCHIVE', ...details });
  }
}
