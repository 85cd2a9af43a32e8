// Defined with the rest of the hierarchy in lib/errors.ts.
export { ArchiveError } from '../../errors.js';
