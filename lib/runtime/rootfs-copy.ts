/**
 * The copy fallback for hosts (or file systems) where overlayfs is not available: the layers are
 * merged into one directory by copying (lib/storage/layer-merge.ts). Slower than an overlay and
 * without sharing, but the container sees the same tree.
 */
import { readFile } from 'node:fs/promises';
import { mergeLayers } from '../storage/layer-merge.js';

/** Copies `layers` (topmost first, as overlay lower dirs are listed) into the empty directory `dest`. */
export async function copyLayers(layers: string[], dest: string): Promise<void> {
  await mergeLayers(layers, dest);
}

let overlayKnown: boolean | undefined;
/** Whether the kernel has overlayfs (it may still refuse a particular upper file system). */
export async function overlayAvailable(): Promise<boolean> {
  if (overlayKnown === undefined) {
    let filesystems = '';
    try {
      filesystems = await readFile('/proc/filesystems', 'utf8');
    } catch (err) {
      // no /proc (a minimal chroot): then nothing says overlayfs is there
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    overlayKnown = filesystems.includes('\toverlay\n');
  }
  return overlayKnown;
}
