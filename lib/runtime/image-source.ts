/**
 * How `Container` gets an image without importing the image layer (which sits above it): the image
 * layer registers a resolver here (lib/index.ts wires it), and `Container.create({ image })` calls it.
 */
import { NsboxError } from '../errors.js';

/** The parts of an OCI image config that drive a container (docker's names). */
export interface ImageRunConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  Volumes?: Record<string, unknown> | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
}

export interface ResolvedImage {
  /** The reference as resolved, e.g. docker.io/library/busybox:latest. */
  ref: string;
  /** The image (manifest) digest. */
  digest: string;
  /** Unpacked layer directories, topmost first: the overlay's lower dirs. */
  layers: string[];
  config: ImageRunConfig;
  /** Called once the container is removed: the image is no longer in use by it. */
  release?: () => void;
}

export type PullPolicy = 'missing' | 'always' | 'never';
export type ImageResolver = (ref: string, options: { pull: PullPolicy; root?: string }) => Promise<ResolvedImage>;

let resolver: ImageResolver | undefined;

export function registerImageResolver(fn: ImageResolver): void {
  resolver = fn;
}

/** `root`: the image store (default: the image layer's own default). */
export function resolveImage(ref: string, pull: PullPolicy, root?: string): Promise<ResolvedImage> {
  if (!resolver) {
    return Promise.reject(new NsboxError(`cannot run image ${ref}: no image support is loaded (import from 'nsbox')`, { code: 'ERR_NO_IMAGES' }));
  }
  return resolver(ref, root === undefined ? { pull } : { pull, root });
}
