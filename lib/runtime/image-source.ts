/**
 * What `Container` needs of an image, without importing the image layer (which sits above it): the
 * caller passes an `ImageResolver` in (`Container.create(options, { images })`; the `Container` that
 * lib/index.ts exports passes lib/image's).
 */

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
  ExposedPorts?: Record<string, unknown> | null;
  /** docker's HealthConfig (Test, Interval, …; nanoseconds). */
  Healthcheck?: Record<string, unknown> | null;
  /** The shell of CMD-SHELL forms (default /bin/sh -c). */
  Shell?: string[] | null;
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
