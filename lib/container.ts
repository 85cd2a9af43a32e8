/**
 * The SDK's `Container`: lib/runtime's, with images from lib/image, so that
 * `Container.run({ image: 'busybox' })` pulls and stacks them. The runtime layer stays below the
 * image layer: it is handed the resolver, here, rather than importing it.
 */
import { resolveForContainer } from './image/image.js';
import { Container as RuntimeContainer, type ContainerDeps } from './runtime/container.js';
import type { JoinedContainer, RunningContainer } from './runtime/joined-container.js';
import type { ContainerOptions } from './runtime/options.js';

const withImages = (deps: ContainerDeps): ContainerDeps => ({ images: resolveForContainer, ...deps });

export class Container extends RuntimeContainer {
  static override create(options: ContainerOptions, deps: ContainerDeps = {}): Promise<Container> {
    return super.create(options, withImages(deps)) as Promise<Container>;
  }

  static override run(options: ContainerOptions, deps: ContainerDeps = {}): Promise<Container> {
    return super.run(options, withImages(deps)) as Promise<Container>;
  }

  static override join(options: ContainerOptions, running: RunningContainer, deps: ContainerDeps = {}): Promise<JoinedContainer> {
    return super.join(options, running, withImages(deps));
  }
}
