/** sha256 digests as OCI writes them: `sha256:<64 lowercase hex>`. */
import { parseDigest } from './digest-format.js';
import { sha256 } from './sha256.js';

export { parseDigest } from './digest-format.js';
export { sha256 } from './sha256.js';
export { digestSchema, type Digest } from './digest-schema.js';

/**
 * The chain id of a layer (OCI image spec, "Layer ChainID"): the diff id of the bottom layer, then
 * sha256 of "<parent chain id> <diff id>" for each layer above it.
 */
export function chainId(parent: string | undefined, diffId: string): string {
  parseDigest(diffId, 'diffId');
  if (parent === undefined) return diffId;
  parseDigest(parent, 'parentChainId');
  return sha256(`${parent} ${diffId}`);
}

/** The chain ids of every layer of an image, bottom first, from its config's rootfs.diff_ids. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(chainId(out.at(-1), d));
  return out;
}
