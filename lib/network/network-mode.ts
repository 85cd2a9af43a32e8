/**
 * A container's network modes, and the one thing each hands the runtime: whether the container
 * gets a network namespace of its own (the runtime brings its `lo` up) or keeps the host's. The
 * runtime knows nothing of modes. `bridge` comes here next: a namespace this module makes and wires
 * (veth to a bridge, addresses, routes, published ports) before the start, which the runtime then
 * only joins by its path.
 */
import { ValidationError } from '../errors.js';
import { isPrivileged } from '../privilege.js';
import { rootlessNetworkAvailable } from './rootless-net.js';

export const NETWORK_MODES = ['none', 'host'] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

/** What the runtime's `namespaces.net` is for a mode: true is a new namespace with only lo, up. */
export function netNamespaceFor(mode: NetworkMode): { net: boolean } {
  return { net: mode === 'none' };
}

/** The mode a container's options stand for (what inspect shows). */
export function networkModeOf(namespaces: { net?: boolean | string } | undefined): NetworkMode {
  return namespaces?.net === false ? 'host' : 'none';
}

/** `nsbox run --network`: `none` (the default) or `host`. */
export function parseNetworkMode(name: string | undefined): NetworkMode {
  const mode = name ?? 'none';
  if (mode === 'none' || mode === 'host') return mode;
  throw new ValidationError(`network ${mode}: nsbox supports none (the default: own namespace, lo only) and host`, 'network');
}

/**
 * docker's `HostConfig.NetworkMode`. The docker CLI sends `default` or `bridge` when no network is
 * asked for: both are taken as `none` until bridge exists.
 */
export function dockerNetworkMode(mode: string | null | undefined): NetworkMode {
  if (!mode || mode === 'default' || mode === 'bridge' || mode === 'none') return 'none';
  if (mode === 'host') return 'host';
  throw new ValidationError(`network ${mode} not found: nsbox has the networks none (the default; bridge is taken as none) and host`, 'NetworkMode');
}

/**
 * The mode of a container that asks for none (CLI without --network or -p, docker's `default`):
 * `none`, unless NSBOX_DEFAULT_NETWORK=bridge. Not docker's `bridge`: a bridge and its nft table
 * are made in the network namespace the engine runs in, and nsbox makes none there unasked (say
 * NSBOX_DEFAULT_NETWORK=bridge where nsbox may own the namespace, as in a test's own).
 * Without root it is `bridge` (pasta: outbound networking, as podman's rootless default), which
 * changes nothing outside the container, where pasta and /dev/net/tun are there for it
 * (NSBOX_DEFAULT_NETWORK=none keeps `none`).
 */
export function defaultNetworkMode(): 'none' | 'bridge' {
  const asked = process.env.NSBOX_DEFAULT_NETWORK;
  if (asked === 'bridge' || asked === 'none') return asked;
  return !isPrivileged() && rootlessNetworkAvailable() ? 'bridge' : 'none';
}
