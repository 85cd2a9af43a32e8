/**
 * reconcile: a record that says running (or paused) corrected against its process and its shim's
 * files (reconcile-with.ts has how), the files read through their schemas (lib/runtime/bundle.ts).
 */
import { bundlePath, readExit, readState, ShimExitSchema, ShimStateSchema, type ShimExit, type ShimState } from '../runtime/bundle.js';
import { ValidationError } from '../errors.js';
import type { ContainerSummary } from './record-summary.js';
import { exitFilePath, reconcileWith, type ExitRead, type ReconcileEnv, type ShimFileReaders } from './reconcile-with.js';

export { exitFilePath, type ReconcileEnv } from './reconcile-with.js';

/** `<bundle>/exit.json` and `<bundle>/state.json`: their schemas are the bundle's (lib/runtime/bundle.ts). */
export const ExitFileSchema = ShimExitSchema;
export type ExitFile = ShimExit;
export const ShimStateFileSchema = ShimStateSchema;
export type ShimStateFile = ShimState;

export const shimStateFilePath = (bundle: string): string => bundlePath(bundle, 'state');

/** Whatever exit.json holds is this shim's: a new shim's bundle starts without one (startDetached). */
function readExitFile(bundle: string): ExitRead {
  try {
    const exit = readExit(bundle);
    return exit && { ok: true, exit };
  } catch (err) {
    if (err instanceof ValidationError) return { ok: false, why: `${exitFilePath(bundle)} is not a valid exit status: ${err.message}` };
    throw err;
  }
}

/** The shim's state.json, when it is there and valid. */
function readShimState(bundle: string): ShimStateFile | undefined {
  try {
    return readState(bundle);
  } catch (err) {
    // Not a state the shim wrote (it writes atomically): says nothing about it.
    if (err instanceof ValidationError) return undefined;
    throw err;
  }
}

const schemaReaders: ShimFileReaders = { exit: readExitFile, state: readShimState };

/**
 * The corrected record, or undefined when `record` is still true. Only the summary's fields are
 * read and changed (record-summary.ts): a full record comes back full, a summary as a summary.
 */
export function reconcile<R extends ContainerSummary>(record: R, env: ReconcileEnv): Promise<R | undefined> {
  return reconcileWith(record, env, schemaReaders);
}
