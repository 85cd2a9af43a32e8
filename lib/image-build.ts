/**
 * The SDK's `Image`: lib/image's, with `Image.build` from lib/build (which sits above the image
 * layer, so the image layer cannot import it): `Image.build({ context, tags })` builds a
 * Dockerfile into the store and returns the image.
 */
import { buildImage, type BuildOptions } from './build/index.js';
import { Image as StoreImage } from './image/image.js';

/** `Image.build(options)`: see BuildOptions. */
export const Image: typeof StoreImage & { build(options: BuildOptions): Promise<StoreImage> } = Object.assign(StoreImage, { build: buildImage });
export type Image = StoreImage;
