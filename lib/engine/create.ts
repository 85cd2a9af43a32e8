/**
 * `Engine.create`: a new container record in state `created`, its options checked, its image
 * resolved (pulled when `options.pull` allows), its volumes made, bind sources that are missing
 * made as docker's `-v`/`Binds` make them.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { ValidationError } from '../errors.js';
import { resolveForContainer } from '../image/image.js';
import { ContainerOptionsSchema, validate, type ContainerOptions } from '../runtime/options.js';
import type { EngineContext } from './engine-context.js';
import { newContainerId, type ContainerRecord } from './records.js';
import { OwnerIndex, ownerLabels } from './owners.js';
import { isPrivileged } from '../privilege.js';
import { parseRestartPolicy } from './restart-policy.js';
import { copyUp } from './volume-copy-up.js';
import { publishAllPorts } from '../network/port-spec.js';
import { checkRootlessNetwork } from '../network/rootless-container.js';
import { DEFAULT_NETWORK, NetworkOptionsSchema, USER_IP_ONLY, type NetworkOptions, type NetworkOptionsInput } from '../network/schemas.js';
import { Volumes, VolumeRequestSchema, type VolumeRequest, type VolumeUse } from './volumes.js';

export interface CreateRequest {
  /** Unique; generated (`adjective_surname`) when absent. */
  name?: string;
  /** What the container runs (no `stdio`: a detached container's stdio is its shim's). */
  options: ContainerOptions;
  /** docker's -i: a stdin that attach clients write to. */
  openStdin?: boolean;
  /** docker's --restart: no, on-failure[:N], always, unless-stopped. */
  restart?: string;
  /** docker's --rm: removed once it has exited. */
  autoRemove?: boolean;
  /** docker's volumes (`-v NAME:/path`, `-v /path`); the image's VOLUMEs not covered get anonymous ones. */
  volumes?: VolumeRequest[];
  /** Host directories of binds to make when missing (docker's `-v /host:/ctr` and `Binds` do). */
  makeBindSources?: string[];
  /** Its networking (lib/network); absent: `options.namespaces.net` alone says none or host. */
  network?: NetworkOptionsInput;
}

/** The network options checked: ports only where there is a namespace of its own to forward to; `container:` by id. */
async function networkOf(ctx: EngineContext, input: NetworkOptionsInput | undefined): Promise<NetworkOptions | undefined> {
  if (input === undefined) return undefined;
  const n = validate(NetworkOptionsSchema, input, 'network options');
  if (n.mode !== 'bridge' && (n.ports.length || n.publishAll)) throw new ValidationError(`conflicting options: port publishing and the container type network mode ${n.mode}`, 'ports');
  // docker's refusals: no address of the user's but on a user-defined network (this mode's networks
  // would otherwise be dropped, unread).
  for (const a of n.networks) {
    if ((a.ipv4Address || a.ipv6Address) && (n.mode !== 'bridge' || a.network === DEFAULT_NETWORK)) throw new ValidationError(USER_IP_ONLY, 'networks.ipv4Address');
  }
  if (!isPrivileged()) checkRootlessNetwork(n);
  if (n.mode === 'container') n.container = (await ctx.store.get(n.container!)).id;
  return n;
}

export async function createContainer(ctx: EngineContext, req: CreateRequest): Promise<ContainerRecord> {
  const { stdio: _stdio, runRoot: _runRoot, id: _id, imageRoot: _imageRoot, ...options } = req.options;
  void _stdio;
  void _runRoot;
  void _id;
  void _imageRoot;
  const config = validate(ContainerOptionsSchema, options, 'container options');
  const network = await networkOf(ctx, req.network);
  // Without root, as podman: a user namespace of its own (root inside is the caller, or its
  // subordinate ids), which then owns the container's other namespaces.
  if (!isPrivileged() && options.namespaces?.user === undefined) options.namespaces = { ...(options.namespaces ?? {}), user: true };
  const netns = network && network.mode !== 'bridge' && network.mode !== 'container' ? { namespaces: { ...(options.namespaces ?? {}), net: network.mode === 'none' } } : {};
  const restartPolicy = parseRestartPolicy(req.restart ?? 'no');
  if (req.autoRemove && restartPolicy.name !== 'no') throw new ValidationError('conflicting options: cannot both remove and restart a container (--rm and --restart)', 'restart');
  let image: { ref: string; digest: string } | undefined;
  let resolved: Awaited<ReturnType<typeof resolveForContainer>> | undefined;
  if (config.image !== undefined) {
    resolved = await resolveForContainer(config.image, { pull: config.pull, root: ctx.root });
    resolved.release?.();
    image = { ref: config.image, digest: resolved.digest };
  }
  // -P: every port the image EXPOSEs and -p did not publish, on a random host port.
  if (network?.publishAll) network.ports = publishAllPorts(resolved?.config.ExposedPorts, network.ports);
  for (const source of req.makeBindSources ?? []) if (!existsSync(source)) mkdirSync(source, { recursive: true, mode: 0o755 });
  // Volumes: those asked for, then the image's VOLUMEs no mount covers (anonymous, as docker's).
  const asked = (req.volumes ?? []).map((v) => validate(VolumeRequestSchema, v, 'volume'));
  const covered = new Set([...(options.mounts ?? []).map((m) => m.target), ...asked.map((v) => v.target)].map((t) => t.replace(/\/+$/, '')));
  const imageVolumes = Object.keys(resolved?.config.Volumes ?? {});
  for (const target of imageVolumes) if (!covered.has(target.replace(/\/+$/, ''))) asked.push({ target, readonly: false });
  const volumes = new Volumes(ctx.root);
  const used: VolumeUse[] = [];
  const binds: NonNullable<ContainerOptions['mounts']> = [];
  for (const v of asked) {
    // A named volume an owned engine makes here is its owner's too (an anonymous one goes with the container).
    const owned = ctx.owner && v.name !== undefined && !volumes.info(v.name) ? ctx.owner : undefined;
    if (owned) new OwnerIndex(ctx.root).note('volume', v.name!, {}, owned);
    const made = volumes.ensure(v.name, owned ? { labels: ownerLabels(owned) } : {});
    // docker's copy-up: an empty volume starts with what the image has at its mount point.
    if (resolved && !v.noCopy && volumes.isEmpty(made.name)) await copyUp(resolved.layers, v.target, made.data);
    used.push({ name: made.name, target: v.target, anonymous: made.anonymous });
    binds.push({ type: 'bind', source: made.data, target: v.target, readonly: v.readonly, recursive: true });
  }
  // docker's create: the image's labels, then the container's own over them (`ps --filter label=`
  // and inspect see both; testcontainers' reaper image is known by its image label).
  const imageLabels = resolved?.config.Labels ?? {};
  // An owned engine's container (owners.ts): noted before its record exists, labelled with its owner.
  const id = newContainerId();
  if (ctx.owner) new OwnerIndex(ctx.root).note('container', id, {}, ctx.owner);
  const ownLabels = ctx.owner ? ownerLabels(ctx.owner) : {};
  const labels = Object.keys(imageLabels).length || ctx.owner ? { labels: { ...imageLabels, ...(options.labels ?? {}), ...ownLabels } } : {};
  let record: ContainerRecord;
  try {
    record = await ctx.store.create({
      id,
      ...(req.name ? { name: req.name } : {}),
      ...(image ? { image } : {}),
      ...(config.rootfs ? { rootfs: config.rootfs } : {}),
      command: config.command ?? [],
      options: { ...options, ...labels, ...netns, ...(image ? { pull: 'never' as const } : {}), ...(binds.length ? { mounts: [...(options.mounts ?? []), ...binds] } : {}) },
      restartPolicy,
      openStdin: req.openStdin ?? false,
      autoRemove: req.autoRemove ?? false,
      volumes: used,
      ...(network ? { network: { options: network } } : {}),
    });
  } catch (e) {
    for (const v of used) if (v.anonymous) volumes.remove(v.name);
    if (ctx.owner) new OwnerIndex(ctx.root).forget('container', id, ctx.owner);
    throw e;
  }
  ctx.emit('create', record);
  return record;
}
