/**
 * docker history: an image's history entries, newest first, each with the layer it made (its size;
 * 0 for an empty_layer entry) and the id of the local image it is the top of: the image itself for
 * the newest, a local image whose history and layers end exactly there for the others (a parent
 * built or committed here), else `<missing>` (a layer pulled as part of another image).
 */
import type { Image } from '../image/image.js';

export interface HistoryEntry {
  /** `sha256:…`, or `<missing>`. */
  id: string;
  /** ISO time, or '' when the entry has none. */
  created: string;
  createdBy: string;
  /** Bytes of the layer the entry made. */
  size: number;
  comment: string;
  /** Names of the image `id`. */
  tags: string[];
}

export function imageHistory(image: Image, all: readonly Image[]): HistoryEntry[] {
  const history = image.history();
  const out: HistoryEntry[] = [];
  let layer = 0;
  for (const [i, h] of history.entries()) {
    const l = h.empty_layer ? undefined : image.layers[layer++];
    const depth = i + 1;
    const topChain = image.layers[layer - 1]?.chainId;
    const owner = depth === history.length
      ? image
      : all.find((o) => o.history().length === depth && o.layers.length === layer && o.layers.at(-1)?.chainId === topChain);
    out.push({
      id: owner?.id ?? '<missing>',
      created: h.created ?? '',
      createdBy: h.created_by ?? '',
      size: l?.size ?? 0,
      comment: h.comment ?? '',
      tags: owner ? owner.names : [],
    });
  }
  // An image with no history (written by a tool that keeps none): one entry per layer.
  if (!history.length) {
    for (const l of image.layers) out.push({ id: '<missing>', created: image.created ?? '', createdBy: '', size: l.size, comment: '', tags: [] });
    if (out.length) out[out.length - 1] = { ...out[out.length - 1]!, id: image.id, tags: image.names };
  }
  return out.reverse();
}
