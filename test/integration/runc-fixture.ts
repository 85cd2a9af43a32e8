/**
 * What the nsbox-runc tests share: the runtime's binary, dist's OCI entry (the Node side it hands
 * to), why they cannot run here, and their context (a temp dir and the runtime's --root in it).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isRoot } from './_helpers.js';

export interface RuncCtx {
  dir: string;
  root: string;
}
export const runcBin = fileURLToPath(new URL('../../build/Release/nsbox-runc', import.meta.url));
export const ociDist = fileURLToPath(new URL('../../dist/oci/main.js', import.meta.url));
export const runcReason = !isRoot
  ? 'needs root'
  : !existsSync(ociDist)
    ? 'dist/ is not built (npm test builds it)'
    : !existsSync(runcBin)
      ? 'build/Release/nsbox-runc is not built'
      : undefined;
