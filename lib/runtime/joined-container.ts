/**
 * `JoinedContainer`: a handle on a container that runs elsewhere (under nsbox-shim, started by
 * another process), from the options it was made with, its init's host pid and its cgroup. `exec`
 * enters it with the same namespaces, user and security as its own process; `stats`, `pause` and
 * `resume` use its cgroup. `remove()` ends what this handle started and releases it, never the
 * container itself.
 */
import { Cgroup } from '../cgroup/cgroup.js';
import type { CgroupStats } from '../cgroup/driver.js';
import { InvalidStateError } from '../errors.js';
import { native } from '../native.js';
import { containerEnv } from './container-env.js';
import { execProcess } from './exec-process.js';
import type { ImageResolver, ResolvedImage } from './image-source.js';
import { withImageDefaults } from './image-config.js';
import { ContainerOptionsSchema, validate, type ContainerConfig, type ContainerOptions, type ExecOptions } from './options.js';
import type { ProcessSecurity } from './plan.js';
import type { ContainerProcess } from './process.js';
import { securityOf } from './security.js';
import { closeQuietly } from './stdio.js';

/** Where the container runs: its id, its init's host pid and its cgroup directories. */
export interface RunningContainer {
  id: string;
  pid: number;
  cgroupPaths?: Record<string, string>;
}

export class JoinedContainer implements AsyncDisposable {
  readonly id: string;
  readonly config: ContainerConfig;
  /** The image the container was made from. */
  readonly image: { ref: string; digest: string } | undefined;
  #pidfd: number | undefined;
  #cgroup: Cgroup | undefined;
  #env: string[];
  #security: ProcessSecurity;
  #execs = new Set<ContainerProcess>();
  #releaseImage: (() => void) | undefined;

  private constructor(config: ContainerConfig, pidfd: number, image: ResolvedImage | undefined) {
    this.id = config.id!;
    this.config = config;
    this.image = image ? { ref: image.ref, digest: image.digest } : undefined;
    this.#releaseImage = image?.release;
    this.#pidfd = pidfd;
    this.#env = containerEnv(config, this.id, image);
    this.#security = securityOf(config);
  }

  /** `images` resolves the options' image (never pulled: the container already runs it). */
  static async open(options: ContainerOptions, running: RunningContainer, images?: ImageResolver): Promise<JoinedContainer> {
    let config = validate(ContainerOptionsSchema, { ...options, id: running.id }, 'container options');
    const image = config.image === undefined ? undefined : await resolveWith(images, config.image, config.imageRoot);
    let c: JoinedContainer;
    try {
      if (image) config = withImageDefaults(config, image);
      c = new JoinedContainer(config, native.pidfdOpen(running.pid), image);
    } catch (e) {
      image?.release?.();
      throw e;
    }
    if (running.cgroupPaths && Object.keys(running.cgroupPaths).length) {
      try {
        c.#cgroup = await Cgroup.open(running.cgroupPaths);
      } catch (e) {
        await c.remove();
        throw e;
      }
    }
    return c;
  }

  get state(): 'running' | 'removed' {
    return this.#pidfd === undefined ? 'removed' : 'running';
  }

  /** The container's cgroup (undefined when it has none). */
  get cgroup(): Cgroup | undefined {
    return this.#cgroup;
  }

  #requireCgroup(what: string): Cgroup {
    if (!this.#cgroup) throw new InvalidStateError(`cannot ${what} container ${this.id}: it has no cgroup`);
    return this.#cgroup;
  }

  /** Starts another process inside the container's namespaces and cgroup. */
  async exec(argv: string[], options: ExecOptions = {}): Promise<ContainerProcess> {
    if (this.#pidfd === undefined) throw new InvalidStateError(`cannot exec in container ${this.id}: this handle is removed`);
    const proc = await execProcess({ id: this.id, config: this.config, env: this.#env, security: this.#security, cgroup: this.#cgroup, enterPidfd: this.#pidfd }, argv, options);
    this.#execs.add(proc);
    return proc;
  }

  stats(): Promise<CgroupStats> {
    return this.#requireCgroup('get stats of').stats();
  }

  pause(): Promise<void> {
    return this.#requireCgroup('pause').freeze();
  }

  resume(): Promise<void> {
    return this.#requireCgroup('resume').thaw();
  }

  /** Kills the processes this handle started and releases the handle. Idempotent. */
  async remove(): Promise<void> {
    if (this.#pidfd === undefined) return;
    for (const p of this.#execs) p.kill('SIGKILL');
    // How each ended is its owner's to read; here only that it has.
    await Promise.allSettled([...this.#execs].map((p) => p.wait()));
    for (const p of this.#execs) p.close();
    this.#execs.clear();
    closeQuietly(this.#pidfd);
    this.#pidfd = undefined;
    this.#cgroup = undefined;
    this.#releaseImage?.();
    this.#releaseImage = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

/** Resolves `ref` through `images`, which must be given when an image is asked for. */
export function resolveWith(images: ImageResolver | undefined, ref: string, root: string | undefined, pull: 'missing' | 'always' | 'never' = 'never'): Promise<ResolvedImage> {
  if (!images) return Promise.reject(new InvalidStateError(`cannot use image ${ref}: no image resolver was given (Container from 'nsbox' has one; lib/runtime's Container takes one as { images })`));
  return images(ref, root === undefined ? { pull } : { pull, root });
}
