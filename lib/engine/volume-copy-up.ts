/**
 * docker's volume copy-up: a new, empty volume mounted over a path the image has files at starts
 * with those files (owners, modes and links kept), as a container would have seen them. The
 * image's view of the path is merged from its unpacked layers by lib/storage/layer-merge.ts, with
 * overlayfs' rules (a whiteout deletes, an opaque directory hides what is below), off the event loop.
 */
import { mergeLayersAt } from '../storage/layer-merge.js';

/**
 * Fills `dest` (an empty directory) with what the image has at `target`. `layers` are the unpacked
 * layer directories, topmost first (as overlay lower dirs). Resolves to whether the image had a
 * directory there. Device nodes and sockets are left out.
 */
export function copyUp(layers: string[], target: string, dest: string): Promise<boolean> {
  return mergeLayersAt(layers, target, dest, { nodes: 'skip' });
}
