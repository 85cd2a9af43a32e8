/**
 * `importImage`: docker import with `--change`. The Dockerfile instructions become the image's
 * container config here, above lib/image, so the image layer never parses a Dockerfile; all of
 * them are checked before any byte of the tar is read.
 */
import type { ImportOptions, ImportSource } from '../image/archive/import.js';
import { Image, type StoreOptions } from '../image/image.js';
import { applyChanges } from './dockerfile/changes.js';

export interface ImportImageOptions extends StoreOptions, Omit<ImportOptions, 'config'> {
  /** Dockerfile instructions for its config (`CMD ["sh"]`, `ENV A=1`, `WORKDIR /app`, …). */
  changes?: readonly string[];
}

export type { ImportSource };

export function importImage(source: ImportSource, options: ImportImageOptions = {}): Promise<Image> {
  const { changes, ...rest } = options;
  const config = applyChanges({}, changes ?? []);
  const labelSource = config.Labels?.['org.opencontainers.image.source'];
  return Image.import(source, { ...rest, config, ...(changes?.length ? { changes } : {}), ...(labelSource ? { labelSource } : {}) });
}
