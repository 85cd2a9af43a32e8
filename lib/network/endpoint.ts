/**
 * A container's endpoint on a bridge network: a veth pair, its host end on the bridge, its other
 * end made directly inside the container's namespace as eth<N> with the allocated address and MAC,
 * and the default route via the gateway on the primary network (none on an internal one). One
 * thread-pool hop of rtnetlink requests; detaching deletes the pair (both ends go together).
 */
import { createHash } from 'node:crypto';
import { reportCleanupError } from '../errors.js';
import { native, type NetlinkOp } from '../native.js';
import { mtuOf } from './bridge.js';
import type { NetworkRecord } from './schemas.js';

/** The host end's name: `nsv` + 8 hex of the container id + 4 of the network id (≤ 15 bytes, repair reads it back). */
export function hostLinkName(containerId: string, networkId: string): string {
  const hex = (s: string) => (/^[0-9a-f]+$/.test(s) ? s : createHash('sha256').update(s).digest('hex'));
  return `nsv${hex(containerId).slice(0, 8)}${hex(networkId).slice(0, 4)}`;
}

/** The container-id part of a host end's name, or undefined when the link is not nsbox's. */
export const containerOfLink = (name: string): string | undefined => (/^nsv[0-9a-f]{12}$/.test(name) ? name.slice(3, 11) : undefined);

export interface EndpointAddress {
  ipAddress: string;
  prefixLength: number;
  gateway: string;
  macAddress: string;
  /** On an IPv6 network: the container's IPv6 address too (dual stack on one interface). */
  ipv6Address?: string;
  ipv6PrefixLength?: number;
  ipv6Gateway?: string;
}

export interface AttachRequest {
  containerId: string;
  /** The container's namespace (sandboxKey). */
  netns: string;
  network: NetworkRecord;
  address: EndpointAddress;
  /** The interface name inside ('eth0' for the first network). */
  ifname: string;
  /** The default route goes via this network's gateway. */
  primary: boolean;
}

export async function attachEndpoint(r: AttachRequest): Promise<void> {
  const host = hostLinkName(r.containerId, r.network.id);
  const mtu = mtuOf(r.network);
  const ops: NetlinkOp[] = [
    { op: 'link_add', kind: 'veth', name: host, peer: r.ifname, peerNs: r.netns, ...(mtu ? { mtu } : {}) },
    { op: 'link_set', name: host, master: r.network.bridge, up: true },
    { op: 'link_set', name: r.ifname, mac: r.address.macAddress, up: true, ns: r.netns },
    { op: 'addr_add', name: r.ifname, address: r.address.ipAddress, prefix: r.address.prefixLength, ns: r.netns },
  ];
  const a = r.address;
  if (a.ipv6Address) ops.push({ op: 'addr_add', name: r.ifname, address: a.ipv6Address, prefix: a.ipv6PrefixLength ?? 64, ns: r.netns });
  if (r.primary && !r.network.internal) ops.push(...defaultRoutes(a, r.netns));
  try {
    await native.netlink(ops);
  } catch (err) {
    await native.netlink([{ op: 'link_del', name: host, optional: true }]).catch(reportCleanupError(`deleting veth ${host}`));
    throw err;
  }
}

/** The default routes via the network's gateways (IPv4, and IPv6 on an IPv6 network). */
export const defaultRoutes = (a: Pick<EndpointAddress, 'gateway' | 'ipv6Gateway'>, netns: string): NetlinkOp[] => [
  { op: 'route_add', address: a.gateway, ns: netns },
  ...(a.ipv6Gateway ? [{ op: 'route_add' as const, address: a.ipv6Gateway, ns: netns }] : []),
];

/** Deletes the pair (no error when it is already gone, e.g. with its namespace). */
export async function detachEndpoint(containerId: string, networkId: string): Promise<void> {
  await native.netlink([{ op: 'link_del', name: hostLinkName(containerId, networkId), optional: true }]);
}
