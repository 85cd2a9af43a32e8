// Defined with the rest of the hierarchy in lib/errors.ts.
export { ConflictError } from '../errors.js';
