/**
 * The SDK's `Container`: lib/runtime's, with images from lib/image, so that
 * `Container.run({ image: 'busybox' })` pulls and stacks them, and networks from lib/network, so
 * that `Container.run({ network: 'bridge', ports: [80] })` is reachable. The runtime layer stays
 * below both: it is handed the resolver and a network namespace path, here, rather than importing them.
 *
 * The SDK's default network stays `none` (a namespace of its own with lo only), unlike the CLI's
 * `bridge`: in-process sandboxes rely on having no network, and bridge networking takes root.
 */
import * as z from 'zod';
import { join } from 'node:path';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { resolveForContainer, type Image } from './image/image.js';
import type { CommitOptions } from './build/commit-container.js';
import { Container as RuntimeContainer, type ContainerDeps } from './runtime/container.js';
import type { JoinedContainer, RunningContainer } from './runtime/joined-container.js';
import type { ContainerOptions as RuntimeOptions } from './runtime/options.js';
import { validate } from './runtime/options.js';
import { defaultRunRoot } from './runtime/run-root.js';
import { NetworkStore } from './network/network-store.js';
import { joinNetwork, leaveNetwork, setupContainerNetwork, teardownContainerNetwork, type ContainerNetwork } from './network/container-network.js';
import { startProxies, type RunningProxies } from './network/port-proxy.js';
import { hasIpv6 } from './network/docker-ports.js';
import { DEFAULT_NETWORK, NetworkAttachmentSchema, NetworkOptionsSchema, PROTOCOLS, type BoundPort, type EndpointState, type NetworkState } from './network/schemas.js';
import { randomBytes } from 'node:crypto';
import { InvalidStateError, NetworkConflictError, NotFoundError, ValidationError, ignoreNotFound, reportCleanupError } from './errors.js';
import type { Readable } from 'node:stream';
import { OutputLog } from './container-logs.js';
import { rootOfPid, rootOfStopped } from './engine/container-root.js';
import { copyIntoRoot, copyOutOfRoot, type CopyFromOptions, type CopyToOptions } from './engine/root-copy.js';
import type { RootDir } from './engine/in-root.js';
import { bindingsOf, reachOf } from './network/published-ports.js';
import { waitFor, WaitForSchema, type WaitFor } from './wait/wait-for.js';
import { hostAddressOf, sdkWaitTarget } from './wait/sdk-target.js';
import { OwnerIndex, thisProcess, type Owner } from './engine/owners.js';
import { defaultRoot } from './storage/layout.js';
import { isPrivileged } from './privilege.js';
import { helperLog, prepareRootlessNetwork, stopRootlessHelper } from './network/rootless-net.js';
import { NsboxError } from './errors.js';
import type { ReusableContainer } from './reusable-container.js';

const withImages = (deps: ContainerDeps): ContainerDeps => ({ images: resolveForContainer, ...deps });

const PortOption = z.union([
  z.number().int().min(1).max(65535),
  z.object({ container: z.number().int().min(1).max(65535), host: z.number().int().min(0).max(65535).optional(), hostIp: z.string().optional(), protocol: z.enum(PROTOCOLS).optional() }).strict(),
]);

const NetworkSdkOptions = z
  .object({
    /** 'none' (the default: lo only), 'host', 'bridge', a user network's name, or a `Network`. */
    network: z.union([z.string().min(1), z.object({ name: z.string().min(1) }).passthrough()]).optional(),
    /** Published ports: a container port (random host port on every address) or a full binding. */
    ports: z.array(PortOption).optional(),
    /** DNS names of the container on a user network, besides its id (and `name`). */
    networkAliases: z.array(z.string().min(1)).optional(),
    /** The container's name on the network (what other containers resolve). */
    name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/).optional(),
  })
  .strict();

const FileOption = z.object({ source: z.union([z.string().min(1), z.instanceof(Buffer)]), target: z.string().startsWith('/'), mode: z.number().int().min(0).max(0o7777).optional() }).strict();

const StartSdkOptions = z
  .object({
    /** Readiness: start() (and run()) resolve once the container is ready as this says (lib/wait/). */
    waitFor: WaitForSchema.optional(),
    /** Copied in before the first start (docker cp's rules; a Buffer becomes the file `target`). */
    files: z.array(FileOption).optional(),
  })
  .strict();

/** The SDK's options: the runtime's, plus networking, readiness and files. */
export type ContainerOptions = RuntimeOptions & z.input<typeof NetworkSdkOptions> & z.input<typeof StartSdkOptions>;

/**
 * run()'s `reuse: true`: find the engine container an earlier run made from the same options and
 * return it, or make one that outlives this process (a `ReusableContainer`, lib/reusable-container.ts).
 */
export type ReuseOptions = ContainerOptions & { reuse: true };

/** The SDK's `ports` as bindings (a bare number: a random host port on every address). */
export const portBindings = (ports: z.output<typeof NetworkSdkOptions>['ports']) =>
  (ports ?? []).map((p) => (typeof p === 'number' ? { containerPort: p } : { containerPort: p.container, hostPort: p.host ?? 0, hostIp: p.hostIp ?? '', protocol: p.protocol ?? 'tcp' }));

/** The options in their three parts (validated but for the runtime's, which create validates); `reuse` is run()'s. */
export function splitOptions(options: ContainerOptions & { reuse?: boolean }): { runtime: RuntimeOptions; net: z.output<typeof NetworkSdkOptions>; start: z.output<typeof StartSdkOptions> } {
  const { network, ports, networkAliases, name, waitFor: wait, files, reuse, ...runtime } = options;
  if (reuse !== undefined && typeof reuse !== 'boolean') throw new ValidationError('invalid container options: reuse: must be a boolean', 'reuse');
  const net = validate(NetworkSdkOptions, { network, ports, networkAliases, name }, 'container options');
  const start = validate(StartSdkOptions, { waitFor: wait, files }, 'container options');
  return { runtime, net, start };
}

const stores = new Map<string, Promise<NetworkStore>>();
/** One store per root for the process: opening one makes its directories. */
function openStore(root: string | undefined): Promise<NetworkStore> {
  const key = root ?? '';
  let s = stores.get(key);
  if (!s) {
    s = NetworkStore.open(root ? { root } : {});
    // A failed open is seen by whoever awaits it; forgetting it lets the next call try again.
    s.catch(() => stores.delete(key));
    stores.set(key, s);
  }
  return s;
}

export class Container extends RuntimeContainer {
  #network: { net: ContainerNetwork; store: NetworkStore; runRoot: string; name?: string; dir: string; interfaces?: number; proxies?: RunningProxies } | undefined;
  /** Rootless networking (an unprivileged caller): its directory (files, pasta's pid and log) and ports. */
  #rootless: { dir: string; state: NetworkState } | undefined;
  #start: z.output<typeof StartSdkOptions> = {};
  #owned: { index: OwnerIndex; owner: Owner; runRoot: string } | undefined;
  #log: OutputLog | undefined;

  /**
   * Validates, resolves the image, sets up networking; nothing runs until start(). The container is
   * noted as this process's in the store (lib/engine/owners.ts) before anything of it exists, so
   * that if this process dies without remove() (SIGKILL included), the next engine open removes
   * what is left of it: cgroup, networking (published ports, addresses, DNS names), run directory.
   */
  static override async create(options: ContainerOptions, deps: ContainerDeps = {}): Promise<Container> {
    if ((options as { reuse?: boolean }).reuse) throw new ValidationError('invalid container options: reuse: only Container.run() reuses (a reusable container is found, or made and started, in one step)', 'reuse');
    const { start, runtime } = splitOptions(options);
    const id = runtime.id ?? randomBytes(32).toString('hex');
    const owned = { index: new OwnerIndex(runtime.imageRoot ?? defaultRoot()), owner: thisProcess(), runRoot: runtime.runRoot ?? defaultRunRoot() };
    const note = { runRoot: owned.runRoot, ...(runtime.cgroupParent !== undefined ? { cgroupParent: runtime.cgroupParent } : {}) };
    owned.index.note('sdk', id, note, owned.owner);
    let c: Container;
    try {
      c = await Container.#create({ ...options, id }, deps, (state, name) => owned.index.note('sdk', id, { ...note, network: state, ...(name ? { name } : {}) }, owned.owner));
    } catch (e) {
      owned.index.forget('sdk', id, owned.owner);
      throw e;
    }
    c.#start = start;
    c.#owned = owned;
    return c;
  }

  static async #create(options: ContainerOptions, deps: ContainerDeps, noteNetwork: (state: NetworkState | 'pending', name?: string) => void): Promise<Container> {
    const { runtime, net } = splitOptions(options);
    const mode = typeof net.network === 'object' ? net.network.name : net.network ?? 'none';
    if (mode === 'none' || mode === 'host') {
      if (net.ports?.length) throw new ValidationError(`invalid container options: ports: cannot be published with network ${mode}`, 'ports');
      const ns = { ...(runtime.namespaces ?? {}), ...(mode === 'host' ? { net: false } : {}) };
      return (await RuntimeContainer.create.call(this, { ...runtime, namespaces: ns }, withImages(deps))) as Container;
    }
    if (!isPrivileged()) return Container.#createRootless(runtime, mode, net, deps);
    const id = runtime.id!;
    const runRoot = runtime.runRoot ?? defaultRunRoot();
    const store = await openStore(runtime.imageRoot);
    noteNetwork('pending');
    const options_ = NetworkOptionsSchema.parse({
      mode: 'bridge',
      networks: [{ network: mode, aliases: net.networkAliases ?? [] }],
      ports: portBindings(net.ports),
    });
    const dir = join(runRoot, 'network', id);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const setup = await setupContainerNetwork({
      id, runRoot, dir, store, options: options_, hostname: runtime.hostname ?? id.slice(0, 12), ...(net.name ? { name: net.name } : {}),
    }).catch((e: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    });
    const sandbox = runtime.rootfs === undefined && runtime.layers === undefined && runtime.image === undefined;
    let c: Container;
    try {
      c = (await RuntimeContainer.create.call(
        this,
        // A host sandbox (no rootfs, layers or image) shows the host's /etc, read-only: no files over it.
        { ...runtime, id, namespaces: { ...(runtime.namespaces ?? {}), net: setup.net }, mounts: [...(runtime.mounts ?? []), ...(sandbox ? [] : setup.mounts)] },
        withImages(deps),
      )) as Container;
    } catch (e) {
      await teardownContainerNetwork({ id, runRoot }, setup.state, store, setup.fds).catch(reportCleanupError(`network teardown of container ${id}`));
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    // IPv6 loopback (::1) through a proxy in this process (the held sockets are the servers' now).
    let proxies: RunningProxies | undefined;
    try {
      if (setup.proxies.length) {
        proxies = await startProxies(setup.proxies);
        setup.fds = setup.fds.filter((fd) => !proxies!.fds.has(fd));
      }
    } catch (e) {
      await c.remove().catch(reportCleanupError(`removing container ${id}`));
      await teardownContainerNetwork({ id, runRoot }, setup.state, store, setup.fds).catch(reportCleanupError(`network teardown of container ${id}`));
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    c.#network = { net: setup, store, runRoot, dir, ...(net.name ? { name: net.name } : {}), ...(proxies ? { proxies } : {}) };
    noteNetwork(setup.state, net.name);
    return c;
  }

  /**
   * Without privileges there is no bridge: the container's own user namespace owns its network
   * namespace, and pasta, started by the spawner before the container runs, gives it outbound
   * networking and its published ports (lib/network/rootless-net.ts).
   */
  static async #createRootless(runtime: RuntimeOptions, mode: string, net: z.output<typeof NetworkSdkOptions>, deps: ContainerDeps): Promise<Container> {
    if (mode !== DEFAULT_NETWORK) {
      throw new ValidationError(`invalid container options: network ${mode}: without root only the default network (bridge, through pasta) is available; user-defined networks need root`, 'network');
    }
    if (!runtime.namespaces?.user) {
      throw new ValidationError("invalid container options: namespaces.user: networking without root needs the container's own user namespace (namespaces: { user: true })", 'namespaces.user');
    }
    const id = runtime.id ?? randomBytes(32).toString('hex');
    const runRoot = runtime.runRoot ?? defaultRunRoot();
    const dir = join(runRoot, 'network', id);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    try {
      const r = prepareRootlessNetwork({ dir, hostname: runtime.hostname ?? id.slice(0, 12), ports: NetworkOptionsSchema.parse({ mode: 'bridge', ports: portBindings(net.ports) }).ports });
      const sandbox = runtime.rootfs === undefined && runtime.layers === undefined && runtime.image === undefined;
      // A rootfs directory is not ours to write: a file is bound only over one that is there.
      const files = sandbox ? [] : r.mounts.filter((m) => runtime.rootfs === undefined || existsSync(join(runtime.rootfs, m.target)));
      const c = (await RuntimeContainer.create.call(
        this,
        { ...runtime, id, namespaces: { ...runtime.namespaces, net: true }, mounts: [...(runtime.mounts ?? []), ...files], netHelper: r.netHelper },
        withImages(deps),
      )) as Container;
      c.#rootless = { dir, state: { endpoints: [], ports: r.ports } };
      return c;
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * The runtime's create() + start() (this class's create, start and remove), typed as this class.
   *
   * `reuse: true` (testcontainers' withReuse): the container is an engine container (under
   * nsbox-shim, in the store at `imageRoot`), labelled `nsbox.reuse-hash` with a hash of everything
   * it is made from — image digest, command, env, ports, network, labels, files by content, … (not
   * `waitFor`). A run with the same options, in this process or a later one, finds it (running, or
   * started again if stopped), waits for its `waitFor`, and returns it instead of making another;
   * two processes racing get one container (an flock in `<root>/reuse/`). It belongs to no process:
   * the cleanup of a dead test process leaves it, and the handle's `remove()` / `await using` only
   * let go of the handle, leaving it running for the next run, as testcontainers does with reused
   * containers. `discard()` removes it; `stop()` stops it (the next run starts it again). See
   * `ReusableContainer`.
   */
  static override run(options: ReuseOptions, deps?: ContainerDeps): Promise<ReusableContainer>;
  static override run(options: ContainerOptions, deps?: ContainerDeps): Promise<Container>;
  static override async run(options: ContainerOptions & { reuse?: boolean }, deps: ContainerDeps = {}): Promise<Container | ReusableContainer> {
    if (options.reuse) {
      const { runReusable } = await import('./reusable-container.js');
      return runReusable({ ...options, reuse: true });
    }
    return (await super.run(options, deps)) as Container;
  }

  static override join(options: RuntimeOptions, running: RunningContainer, deps: ContainerDeps = {}): Promise<JoinedContainer> {
    return super.join(options, running, withImages(deps));
  }

  /** What the container got of the network: its endpoints and published ports (undefined without a bridge network). */
  get networkState(): NetworkState | undefined {
    return this.#network?.net.state ?? this.#rootless?.state;
  }

  /**
   * Every binding of a published container port, as bound (`0.0.0.0`: every IPv4 address; `::`
   * every IPv6 one, held too when the container has an IPv6 address); empty when it is not published.
   */
  ports(containerPort: number, protocol: BoundPort['protocol'] = 'tcp'): Array<{ host: string; port: number }> {
    return bindingsOf(this.networkState?.ports ?? [], containerPort, protocol, hasIpv6(this.networkState));
  }

  /**
   * Where the host reaches a published container port: its first binding, an every-address one as
   * loopback (`{ host: '127.0.0.1', port: 49153 }`); NotFoundError when it is not published.
   * `ports(n)` has every binding.
   */
  port(containerPort: number, protocol: BoundPort['protocol'] = 'tcp'): { host: string; port: number } {
    return reachOf(this.networkState?.ports ?? [], containerPort, protocol, this.id);
  }

  /**
   * docker commit: the container's writable layer (its overlay upper directory) as a new layer over
   * its image, with a history entry and provenance (author, comment, `changes` as Dockerfile
   * instructions), named `reference` when given. A running container is frozen while its layer is
   * read, unless `pause: false`.
   */
  async commit(opts: CommitOptions & { pause?: boolean } = {}): Promise<Image> {
    const parts = this.rootParts();
    if (!this.image || !parts?.overlay) {
      throw new InvalidStateError(`container ${this.id.slice(0, 12)} has no image layers of its own to commit (it runs ${this.image ? 'on copied layers' : 'a root file system it was given'})`);
    }
    const { commitContainer } = await import('./build/commit-container.js');
    const cg = opts.pause !== false && this.state === 'running' ? this.cgroup : undefined;
    await cg?.freeze();
    try {
      const env = this.config.env;
      return await commitContainer(
        {
          upper: parts.overlay.upper,
          image: this.image.digest,
          containerId: this.id,
          command: this.config.command,
          entrypoint: this.config.entrypoint,
          env: env === undefined ? undefined : Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`),
          cwd: this.config.cwd,
          root: this.config.imageRoot ?? defaultRoot(),
        },
        opts,
      );
    } finally {
      await cg?.thaw();
    }
  }

  /** The container's address on a network (by name; default: its first). */
  ipAddress(network?: string): string | undefined {
    const eps = this.#network?.net.state.endpoints ?? [];
    return (network === undefined ? eps[0] : eps.find((e) => e.networkName === network || e.networkId === network))?.ipAddress;
  }

  /**
   * Starts the container: the `files` of its options are copied in first (once), its output is
   * kept from the first byte (`logs()`), and with `waitFor` (the options' or this call's) the
   * promise resolves only once it is ready (a WaitError says what it waited for, with the log's tail).
   */
  override async start(opts: { waitFor?: WaitFor } = {}): Promise<void> {
    const files = this.#start.files;
    if (files?.length) {
      for (const f of files) await this.copyTo(f.source, f.target, { makeParents: true, ...(f.mode === undefined ? {} : { mode: f.mode }) });
      this.#start = { ...this.#start, files: [] };
    }
    try {
      await super.start();
    } catch (e) {
      const why = this.#rootless && e instanceof NsboxError && e.syscall === 'net helper' ? helperLog(this.#rootless.dir) : '';
      if (why && e instanceof NsboxError) throw new NsboxError(`${e.message}: pasta could not set up the container's network: ${why}`, { code: e.code, cause: e });
      throw e;
    }
    const o = this.#owned;
    if (o && this.cgroup) o.index.note('sdk', this.id, this.#noteData(o.runRoot), o.owner);
    const log = new OutputLog();
    log.attach('stdout', super.stdout);
    log.attach('stderr', super.stderr);
    this.#log = log;
    const spec = opts.waitFor ?? this.#start.waitFor;
    if (spec) await this.waitFor(spec);
  }

  /** Waits until the running container is ready as `spec` says (see lib/wait/wait-for.ts). */
  waitFor(spec: WaitFor, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return waitFor(sdkWaitTarget(this, this.#log), spec, opts);
  }

  /** The container's stdout: all of it from its first byte, whenever it is read (its output is also kept for logs()). */
  override get stdout(): Readable | null {
    return this.#log ? this.#log.copy('stdout') : super.stdout;
  }
  override get stderr(): Readable | null {
    return this.#log ? this.#log.copy('stderr') : super.stderr;
  }

  /** What it printed since its start (stdout and stderr as they came); `{ follow: true }`: that, then live, as a stream. */
  logs(): Promise<string>;
  logs(options: { follow: true }): Readable;
  logs(options?: { follow?: boolean }): Promise<string> | Readable {
    const log = this.#log;
    if (options?.follow) {
      if (!log) throw new InvalidStateError(`container ${this.id.slice(0, 12)} has not started: no logs to follow`);
      return log.follow();
    }
    return Promise.resolve(log?.text() ?? '');
  }

  /** The host port a published container port is reached on (testcontainers' getMappedPort); NotFoundError when it is not published. */
  mappedPort(containerPort: number): number {
    return this.port(containerPort).port;
  }

  /** `scheme://host:port` for a container port, as the host reaches it (published, else the container's address). */
  url(containerPort: number, scheme = 'http'): string {
    const a = hostAddressOf(this, containerPort);
    if (!a) throw new NotFoundError(`port ${containerPort} of container ${this.id.slice(0, 12)} is not reachable from the host (publish it, or use a bridge network)`);
    return `${scheme}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  /** The root, running or not (a container not running yet: through a helper's mount namespace). */
  async #rootDir(): Promise<RootDir> {
    if (this.state === 'running' && this.pid !== undefined) return rootOfPid(this.pid);
    const parts = this.rootParts();
    if (!parts || this.state === 'removed') throw new InvalidStateError(`container ${this.id.slice(0, 12)} has no root to copy to or from while it is ${this.state}`);
    return rootOfStopped(parts);
  }

  /**
   * Copies a host file or directory (docker cp's rules, lib/engine/copy.ts), or a Buffer as the file
   * `containerPath` (parents made), into the container, running or not yet started.
   */
  async copyTo(source: string | Buffer, containerPath: string, opts: CopyToOptions = {}): Promise<void> {
    await copyIntoRoot(await this.#rootDir(), source, containerPath, opts, `container ${this.id.slice(0, 12)}`);
  }

  /**
   * Copies `containerPath` out: to `hostPath` with docker cp's rules, or, without it, as a tar
   * stream (docker's GET archive; the container's root is held until the stream is read or destroyed).
   */
  async copyFrom(containerPath: string): Promise<Readable>;
  async copyFrom(containerPath: string, hostPath: string, opts?: CopyFromOptions): Promise<void>;
  async copyFrom(containerPath: string, hostPath?: string, opts: CopyFromOptions = {}): Promise<Readable | void> {
    return copyOutOfRoot(await this.#rootDir(), containerPath, hostPath, opts, `container ${this.id.slice(0, 12)}`);
  }

  /**
   * Joins one more network (docker's `network connect`): an address on it, a veth `ethN` in the
   * container's namespace, and on a user network its DNS names (`name`, `aliases`, short id).
   */
  async connect(network: string | { name: string }, opts: { aliases?: string[]; ipv4Address?: string; ipv6Address?: string } = {}): Promise<EndpointState> {
    const n = this.#network;
    const name = typeof network === 'string' ? network : network.name;
    if (!n?.net.state.sandboxKey) throw new InvalidStateError(`container ${this.id.slice(0, 12)} has no network namespace of its own to connect (network none, host or container:)`);
    const state = n.net.state;
    // an unknown network: attach() below says so
    const known = await n.store.get(name).catch(ignoreNotFound);
    if (state.endpoints.some((e) => e.networkName === name || e.networkId === name || e.networkId === known?.id)) {
      throw new NetworkConflictError(`endpoint with name ${n.name ?? this.id.slice(0, 12)} already exists in network ${known?.name ?? name}`);
    }
    const attachment = NetworkAttachmentSchema.parse({ network: name, aliases: opts.aliases ?? [], ...(opts.ipv4Address ? { ipv4Address: opts.ipv4Address } : {}), ...(opts.ipv6Address ? { ipv6Address: opts.ipv6Address } : {}) });
    const ifname = `eth${(n.interfaces ??= state.endpoints.length)}`;
    const ep = await joinNetwork({ id: this.id, runRoot: n.runRoot, dir: n.dir, ...(n.name ? { name: n.name } : {}) }, state, attachment, n.store, ifname);
    n.interfaces++;
    this.#noteNetwork();
    return ep;
  }

  /** Leaves a network (docker's `network disconnect`): its address, veth and DNS names go. */
  async disconnect(network: string | { name: string }): Promise<void> {
    const n = this.#network;
    const name = typeof network === 'string' ? network : network.name;
    const state = n?.net.state;
    const i = state?.endpoints.findIndex((e) => e.networkName === name || e.networkId === name || (name.length >= 6 && e.networkId.startsWith(name))) ?? -1;
    if (!n || !state || i < 0) throw new NotFoundError(`container ${this.id.slice(0, 12)} is not connected to network ${name}`);
    await leaveNetwork({ id: this.id, runRoot: n.runRoot, dir: n.dir, ...(n.name ? { name: n.name } : {}) }, state, i, n.store);
    this.#noteNetwork();
  }

  /** The owner note follows the container's endpoints: what to undo if this process dies. */
  #noteNetwork(): void {
    const o = this.#owned;
    const n = this.#network;
    if (!o || !n) return;
    o.index.note('sdk', this.id, this.#noteData(o.runRoot), o.owner);
  }

  /**
   * What the owner note says, its cgroup's directories with it once there is one: a relative parent
   * lies beneath this process's own cgroup in each hierarchy, and whoever reaps the container from
   * another process (another memory cgroup, say) would look beneath its own.
   */
  #noteData(runRoot: string): Record<string, unknown> {
    const n = this.#network;
    const cgroupPaths = this.cgroup?.paths;
    return {
      runRoot,
      ...(this.config.cgroupParent !== undefined ? { cgroupParent: this.config.cgroupParent } : {}),
      ...(n ? { network: n.net.state, ...(n.name ? { name: n.name } : {}) } : {}),
      ...(cgroupPaths && Object.keys(cgroupPaths).length ? { cgroupPaths } : {}),
    };
  }

  override async remove(): Promise<void> {
    const n = this.#network;
    await super.remove();
    const rootless = this.#rootless;
    if (rootless) {
      this.#rootless = undefined;
      await stopRootlessHelper(rootless.dir);
      rmSync(rootless.dir, { recursive: true, force: true });
    }
    if (n) {
      this.#network = undefined;
      await n.proxies?.close();
      await teardownContainerNetwork({ id: this.id, runRoot: n.runRoot, ...(n.name ? { name: n.name } : {}) }, n.net.state, n.store, n.net.fds);
      rmSync(n.dir, { recursive: true, force: true });
    }
    // Only once all of it is gone: until then, the next engine open after a kill finishes it.
    this.#owned?.index.forget('sdk', this.id, this.#owned.owner);
    this.#owned = undefined;
  }
}
