/**
 * After a crash at any point (kill -9 of the CLI, the shim, `nsbox serve` mid-setup): whatever
 * networking is left for containers that are not live goes — namespace files, veth host ends, DNS
 * entries, addresses, DNAT elements. Run by the engine at start-up with the ids it knows are live.
 */
import { readdirSync } from 'node:fs';
import { isCode } from '../errors.js';
import { native } from '../native.js';
import { pruneDns } from './dns.js';
import { ipv6Of } from './ipam.js';
import { containerOfLink } from './endpoint.js';
import { listPortRules, removePortRules } from './nft.js';
import { netnsDir, netnsPath, removeSandbox } from './sandbox.js';
import type { NetworkRecord } from './schemas.js';

export interface RepairStore {
  list(): Promise<NetworkRecord[]>;
  ipam: {
    repair(live: Iterable<string>): Promise<unknown[]>;
    endpoints(networkId: string): Promise<Array<{ containerId: string; ipAddress: string }>>;
  };
}

export interface NetworkRepair {
  netns: string[];
  links: string[];
  dnsEntries: number;
  addresses: number;
  portRules: number;
  /** Without root: the containers whose pasta was left running (rootless-container.ts). */
  helpers?: string[];
}

export async function repairNetworking(runRoot: string, store: RepairStore, liveIds: Iterable<string>): Promise<NetworkRepair> {
  const live = new Set(liveIds);
  const out: NetworkRepair = { netns: [], links: [], dnsEntries: 0, addresses: 0, portRules: 0 };
  let files: string[] = [];
  try {
    files = readdirSync(netnsDir(runRoot));
  } catch (err) {
    // ENOENT: no namespace was ever made here
    if (!isCode(err, 'ENOENT')) throw err;
  }
  for (const id of files) {
    if (live.has(id)) continue;
    removeSandbox(netnsPath(runRoot, id));
    out.netns.push(id);
  }
  const liveIdList = [...live];
  for (const name of native.linkNames()) {
    const prefix = containerOfLink(name);
    if (prefix === undefined || liveIdList.some((id) => id.startsWith(prefix))) continue;
    await native.netlink([{ op: 'link_del', name, optional: true }]);
    out.links.push(name);
  }
  out.dnsEntries = await pruneDns(runRoot, live);
  out.addresses = (await store.ipam.repair(live)).length;
  const held = new Set<string>();
  for (const n of await store.list()) {
    for (const e of await store.ipam.endpoints(n.id)) {
      held.add(e.ipAddress);
      const v6 = ipv6Of(n, e.ipAddress);
      if (v6) held.add(v6);
    }
  }
  const stale = (await listPortRules()).filter((r) => !held.has(r.containerIp));
  await removePortRules(stale);
  out.portRules = stale.length;
  return out;
}
