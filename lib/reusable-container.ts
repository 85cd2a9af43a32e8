/**
 * `Container.run({ ..., reuse: true })`: testcontainers' withReuse for the SDK. The container is
 * an engine container (under nsbox-shim, lib/engine), so it outlives the process that made it; it
 * carries the hash of everything it was created from (reuse-hash.ts) in the label
 * `nsbox.reuse-hash`, and a later run with the same options — in this process or another — finds
 * it and returns it (started again if it was stopped) once its `waitFor` passes, instead of making
 * another. Two processes racing for the same hash get one container: the lookup and the creation
 * happen under an flock of `<root>/reuse/<hash>.lock`.
 *
 * A reusable container belongs to no process: it is made by an engine opened with `owned: false`,
 * so the owner reap (owners.ts) never removes it when its maker dies, and `remove()` (or
 * `await using`) only lets go of the handle. It stays running for the next run, as testcontainers'
 * reused containers do (Ryuk leaves them); `discard()` removes it for good.
 */
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Engine } from './engine/engine.js';
import { isRunning } from './engine/container-status.js';
import type { ContainerRecord } from './engine/records.js';
import type { ExecOptions } from './engine/exec.js';
import { copyIntoRoot, copyOutOfRoot, type CopyFromOptions, type CopyToOptions } from './engine/root-copy.js';
import { ignoreNotFound, InvalidStateError, NotFoundError, NotModifiedError, ValidationError } from './errors.js';
import { resolveForContainer } from './image/image.js';
import { bindingsOf, reachOf } from './network/published-ports.js';
import type { BoundPort, NetworkOptionsInput, NetworkState } from './network/schemas.js';
import type { ContainerProcess } from './runtime/process.js';
import { ContainerOptionsSchema, validate } from './runtime/options.js';
import { withLock } from './storage/atomic.js';
import { defaultRoot } from './storage/layout.js';
import { contentDigest, REUSE_HASH_LABEL, reuseHash } from './reuse-hash.js';
import { engineWaitTarget, logSize, startOffsetOf } from './wait/engine-target.js';
import { waitFor, type WaitFor } from './wait/wait-for.js';
import { portBindings, splitOptions, type ContainerOptions, type ReuseOptions } from './container.js';

/** A handle on a reusable engine container (see the header): what a test needs of it. */
export class ReusableContainer implements AsyncDisposable {
  readonly id: string;
  /** The hash of its creation options (its `nsbox.reuse-hash` label). */
  readonly reuseHash: string;
  /** true when this run found it (made by an earlier run), false when this run made it. */
  readonly reused: boolean;
  /** The engine it belongs to (opened with `owned: false`). */
  readonly engine: Engine;
  #record: ContainerRecord;
  /** Where its current start's output begins in its log (a log wait counts only what follows). */
  #logOffset: number;
  #released = false;

  /** @internal Made by `Container.run({ reuse: true })`. */
  constructor(engine: Engine, record: ContainerRecord, hash: string, reused: boolean, logOffset: number) {
    this.engine = engine;
    this.#record = record;
    this.#logOffset = logOffset;
    this.id = record.id;
    this.reuseHash = hash;
    this.reused = reused;
  }

  /** Its engine record as of the last start or stop through this handle. */
  get record(): ContainerRecord {
    return this.#record;
  }

  get name(): string | undefined {
    return this.#record.name;
  }

  /** 'running', 'exited', … (the record's), or 'released' once this handle is let go of. */
  get state(): string {
    return this.#released ? 'released' : this.#record.state;
  }

  /** Host pid of its init while it runs. */
  get pid(): number | undefined {
    return this.engine.pidOf(this.#record);
  }

  /** What its current start got of the network: endpoints and published ports. */
  get networkState(): NetworkState | undefined {
    return this.#record.network?.state;
  }

  /** Every binding of a published container port (see Container.ports). */
  ports(containerPort: number, protocol: BoundPort['protocol'] = 'tcp'): Array<{ host: string; port: number }> {
    return bindingsOf(this.networkState?.ports ?? [], containerPort, protocol);
  }

  /** Where the host reaches a published container port (see Container.port); NotFoundError when it is not published. */
  port(containerPort: number, protocol: BoundPort['protocol'] = 'tcp'): { host: string; port: number } {
    return reachOf(this.networkState?.ports ?? [], containerPort, protocol, this.id);
  }

  mappedPort(containerPort: number): number {
    return this.port(containerPort).port;
  }

  /** The container's address on a network (by name; default: its first). */
  ipAddress(network?: string): string | undefined {
    const eps = this.networkState?.endpoints ?? [];
    return (network === undefined ? eps[0] : eps.find((e) => e.networkName === network || e.networkId === network))?.ipAddress;
  }

  /** `scheme://host:port` for a container port, as the host reaches it (published, else the container's address). */
  url(containerPort: number, scheme = 'http'): string {
    const a = this.ports(containerPort).length ? this.port(containerPort) : this.ipAddress() ? { host: this.ipAddress()!, port: containerPort } : undefined;
    if (!a) throw new NotFoundError(`port ${containerPort} of container ${this.id.slice(0, 12)} is not reachable from the host (publish it, or use a bridge network)`);
    return `${scheme}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  #live(what: string): void {
    if (this.#released) throw new InvalidStateError(`cannot ${what} container ${this.id.slice(0, 12)}: this handle is released (the container itself runs on)`);
  }

  /** Runs a process in it (the engine's exec: its namespaces, cgroup, user and security). */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ContainerProcess> {
    this.#live('exec in');
    return this.engine.exec(this.id, argv, opts);
  }

  /** Everything it printed, over all its starts (docker logs: its json-file log). */
  async logs(): Promise<string> {
    let out = '';
    for await (const e of this.engine.logs(this.id)) out += e.log;
    return out;
  }

  /** Waits until it is ready as `spec` says (only output of its current start counts for a log wait). */
  async waitFor(spec: WaitFor, opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#live('wait for');
    await waitFor(engineWaitTarget(this.engine, this.#record, this.#logOffset), spec, opts);
  }

  async copyTo(source: string | Buffer, containerPath: string, opts: CopyToOptions = {}): Promise<void> {
    this.#live('copy to');
    const { root } = await this.engine.openRoot(this.id);
    await copyIntoRoot(root, source, containerPath, opts, `container ${this.id.slice(0, 12)}`);
  }

  async copyFrom(containerPath: string): Promise<Readable>;
  async copyFrom(containerPath: string, hostPath: string, opts?: CopyFromOptions): Promise<void>;
  async copyFrom(containerPath: string, hostPath?: string, opts: CopyFromOptions = {}): Promise<Readable | void> {
    this.#live('copy from');
    const { root } = await this.engine.openRoot(this.id);
    return copyOutOfRoot(root, containerPath, hostPath, opts, `container ${this.id.slice(0, 12)}`);
  }

  /** Stops the container (its stop signal, SIGKILL after `timeout` s); the next reusing run starts it again. */
  async stop(opts: { timeout?: number } = {}): Promise<void> {
    this.#live('stop');
    this.#record = await this.engine.stop(this.id, opts).catch((e: unknown) => {
      // Stopped already (docker's 304): as asked.
      if (e instanceof NotModifiedError) return this.engine.get(this.id);
      throw e;
    });
  }

  /**
   * Lets go of this handle and leaves the container running for the next run, as testcontainers
   * does with a reused container (`discard()` removes it). Idempotent.
   */
  async remove(): Promise<void> {
    this.#released = true;
  }

  /** Removes the container for good (killed first, its anonymous volumes too): the next run makes a new one. */
  async discard(): Promise<void> {
    this.#released = true;
    await this.engine.remove(this.id, { force: true, volumes: true }).catch(ignoreNotFound);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

/** What the hash is taken over: the options as plain data, files by content, the image by digest. */
function material(options: ContainerOptions, imageDigest: string | undefined): unknown {
  const { start, runtime, net } = splitOptions(options);
  // Where this process keeps things, how it reads output, when to pull: not what the container is.
  const { id: _id, runRoot: _runRoot, imageRoot: _imageRoot, stdio: _stdio, pull: _pull, ...what } = runtime;
  void [_id, _runRoot, _imageRoot, _stdio, _pull];
  return {
    v: 1,
    ...what,
    ...(imageDigest ? { image: imageDigest } : {}),
    network: typeof net.network === 'object' ? net.network.name : (net.network ?? 'none'),
    ports: portBindings(net.ports),
    networkAliases: net.networkAliases ?? [],
    name: net.name,
    files: (start.files ?? []).map((f) => ({ target: f.target, mode: f.mode, content: contentDigest(f.source) })),
  };
}

/** The engine's network request for the SDK's network options. */
function networkRequest(net: ReturnType<typeof splitOptions>['net']): NetworkOptionsInput {
  const mode = typeof net.network === 'object' ? net.network.name : (net.network ?? 'none');
  if (mode === 'none' || mode === 'host') {
    if (net.ports?.length) throw new ValidationError(`invalid container options: ports: cannot be published with network ${mode}`, 'ports');
    return { mode };
  }
  return { mode: 'bridge', networks: [{ network: mode, aliases: net.networkAliases ?? [] }], ports: portBindings(net.ports) };
}

/** `Container.run({ reuse: true })` (see the header). */
export async function runReusable(options: ReuseOptions): Promise<ReusableContainer> {
  const { reuse: _reuse, ...rest } = options;
  void _reuse;
  const { start, runtime, net } = splitOptions(rest);
  const config = validate(ContainerOptionsSchema, runtime, 'container options');
  if (config.id !== undefined) throw new ValidationError('invalid container options: id: a reusable container is found by its options, not made with an id of its own', 'id');
  const root = config.imageRoot ?? defaultRoot();
  let digest: string | undefined;
  if (config.image !== undefined) {
    const image = await resolveForContainer(config.image, { pull: config.pull, root });
    image.release?.();
    digest = image.digest;
  }
  const hash = reuseHash(material(rest, digest));
  const network = networkRequest(net);
  const engine = await Engine.open({ root, owned: false });
  const { record, reused, offset } = await withLock(join(root, 'reuse', `${hash}.lock`), async () => {
    const found = (await engine.list({ all: true })).filter((r) => r.options.labels?.[REUSE_HASH_LABEL] === hash);
    for (const r of found) {
      if (isRunning(r)) return { record: r, reused: true, offset: await startOffsetOf(engine, r) };
      if (r.state === 'exited') {
        const before = await logSize(engine, r);
        return { record: await engine.start(r.id), reused: true, offset: before };
      }
      // 'created': its maker died before its start (its files may be missing); 'dead': no use.
      await engine.remove(r.id, { force: true, volumes: true });
    }
    const { id: _id, runRoot: _runRoot, imageRoot: _imageRoot, stdio: _stdio, ...engineOptions } = runtime;
    void [_id, _runRoot, _imageRoot, _stdio];
    const made = await engine.create({
      ...(net.name ? { name: net.name } : {}),
      options: { ...engineOptions, ...(digest ? { pull: 'never' as const } : {}), labels: { ...(runtime.labels ?? {}), [REUSE_HASH_LABEL]: hash } },
      network,
    });
    try {
      for (const f of start.files ?? []) {
        const { root: dir } = await engine.openRoot(made.id);
        await copyIntoRoot(dir, f.source, f.target, { makeParents: true, ...(f.mode === undefined ? {} : { mode: f.mode }) }, `container ${made.id.slice(0, 12)}`);
      }
      return { record: await engine.start(made.id), reused: false, offset: 0 };
    } catch (e) {
      await engine.remove(made.id, { force: true, volumes: true });
      throw e;
    }
  });
  const c = new ReusableContainer(engine, record, hash, reused, offset);
  if (start.waitFor) await c.waitFor(start.waitFor);
  return c;
}
