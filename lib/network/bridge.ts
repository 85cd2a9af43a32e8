/**
 * A network's bridge in the namespace nsbox runs in: the device with the gateway address, up;
 * forwarding on (ip_forward) and route_localnet on the bridge (a connection to 127.0.0.1 DNAT'ed to
 * a container may leave through it, as docker's docker0); its subnet and name in the nft table.
 * An IPv6 network's bridge also has its IPv6 gateway, and IPv6 forwarding is on.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { native } from '../native.js';
import { NsboxError } from '../errors.js';
import { addNetworkElements, removeNetworkElements } from './nft.js';
import type { NetworkRecord } from './schemas.js';

/** The subnet's prefix length ('10.88.0.0/16' → 16). */
export const prefixOf = (subnet: string): number => Number(subnet.split('/')[1] ?? 32);

function sysctl(path: string, value: string): void {
  const file = `/proc/sys/${path}`;
  try {
    if (readFileSync(file, 'utf8').trim() === value) return;
    writeFileSync(file, value);
  } catch (err) {
    throw new NsboxError(`sysctl ${path.replaceAll('/', '.')}=${value}: ${(err as Error).message}`, { code: 'ERR_SYSCTL', path: file, cause: err });
  }
}

const isExists = (err: unknown) => err instanceof NsboxError && err.code === 'EEXIST';

/**
 * The MTU of a network's bridge and veths when it asks for none: loopback's order of size (pasta's
 * and slirp4netns' 65520), not docker's 1500. Measured here (bench/network.ts): host → container
 * at 1500 ran at 0.5–0.8× loopback, at 65520 at 1.0–1.1×, the published port likewise: per-packet
 * cost is what the veth + bridge path adds. Traffic leaving the host is unharmed: TCP sends what
 * the peer's MSS allows, and a datagram too large for the uplink gets the host's own ICMP
 * "fragmentation needed" / "packet too big". `NSBOX_NETWORK_MTU=1500` gives docker's default back.
 */
export const DEFAULT_MTU = 65520;

const validMtu = (v: number) => Number.isInteger(v) && v >= 68 && v <= 65535;

/** The MTU a network asks for (docker's option com.docker.network.driver.mtu), else NSBOX_NETWORK_MTU, else DEFAULT_MTU. */
export function mtuOf(net: Pick<NetworkRecord, 'options'>): number {
  for (const text of [net.options['com.docker.network.driver.mtu'] ?? net.options.mtu, process.env.NSBOX_NETWORK_MTU]) {
    const v = Number(text ?? 0);
    if (validMtu(v)) return v;
  }
  return DEFAULT_MTU;
}

/** Makes the bridge if it is missing (idempotent; a second process racing is fine). */
export async function ensureBridge(net: NetworkRecord): Promise<void> {
  if (!native.linkNames().includes(net.bridge)) {
    const mtu = mtuOf(net);
    try {
      await native.netlink([{ op: 'link_add', kind: 'bridge', name: net.bridge, ...(mtu ? { mtu } : {}) }]);
      await native.netlink([
        { op: 'addr_add', name: net.bridge, address: net.gateway, prefix: prefixOf(net.subnet) },
        ...(net.subnet6 && net.gateway6 ? [{ op: 'addr_add' as const, name: net.bridge, address: net.gateway6, prefix: prefixOf(net.subnet6) }] : []),
        { op: 'link_set', name: net.bridge, up: true },
      ]);
    } catch (err) {
      if (!isExists(err)) throw err;
    }
  }
  sysctl('net/ipv4/ip_forward', '1');
  sysctl(`net/ipv4/conf/${net.bridge}/route_localnet`, '1');
  await addNetworkElements(net.bridge, net.subnet, net.internal);
  if (net.subnet6) {
    sysctl('net/ipv6/conf/all/forwarding', '1');
    await addNetworkElements(net.bridge, net.subnet6, net.internal);
  }
}

/** Deletes the bridge and the network's elements (a network removed). */
export async function removeBridge(net: NetworkRecord): Promise<void> {
  await native.netlink([{ op: 'link_del', name: net.bridge, optional: true }]);
  await removeNetworkElements(net.bridge, net.subnet, net.internal);
  if (net.subnet6) await removeNetworkElements(net.bridge, net.subnet6, net.internal);
}
