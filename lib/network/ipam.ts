/**
 * IPAM: the addresses of a network's containers. Each allocated address is a file,
 * `<root>/networks/<id>/ips/<address>`, holding the container id; it is written to a temp file and
 * hard-linked into place, and link(2) fails when the name exists, so two processes never get the
 * same address and a kill -9 at any point leaves the address either allocated (to a container id
 * that repair checks) or free. `containers/<container id>` names the container's address, so that
 * allocate (again) and release read one file; the `ips/` files stay the truth. No state lives only
 * in memory. The network address, the gateway and the broadcast address are never handed out.
 *
 * Nothing is fsynced: a kill -9 loses nothing the page cache holds, and after a power loss no
 * container is live, so repair frees every address anyway.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NetworkConflictError, NotFoundError, NsboxError, ValidationError, ignoreCode, reportCleanupError } from '../errors.js';
import { withLock } from '../storage/atomic.js';
import { isCode } from '../storage/errors.js';
import { StoreLayout } from '../storage/layout.js';
import { contains, formatIp, lastAddress, parseCidr, parseIp } from './cidr.js';
import { NetworkRecordSchema, type NetworkRecord } from './schemas.js';

export interface Allocation {
  ipAddress: string;
  prefixLength: number;
  gateway: string;
  macAddress: string;
  /** On an IPv6 network: the address with the same host part in its IPv6 subnet. */
  ipv6Address?: string;
  ipv6PrefixLength?: number;
  ipv6Gateway?: string;
}

export interface Endpoint {
  containerId: string;
  ipAddress: string;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const isTemp = (f: string) => f.startsWith('.');

/** docker's MAC for an IPv4 address: 02:42 and the address's four bytes. */
export function macForIp(ip: string): string {
  const v = parseIp(ip);
  if (!v || v.family !== 4) throw new ValidationError(`not an IPv4 address: "${ip}"`, 'ipAddress');
  const bytes = [0x02n, 0x42n, (v.value >> 24n) & 0xffn, (v.value >> 16n) & 0xffn, (v.value >> 8n) & 0xffn, v.value & 0xffn];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A network record as stored, or undefined when there is none. */
export async function readNetworkRecord(layout: StoreLayout, id: string): Promise<NetworkRecord | undefined> {
  const file = layout.networkRecord(id);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
  try {
    return NetworkRecordSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new NsboxError(`${file}: not a valid nsbox network record: ${(err as Error).message}`, {
      code: 'ERR_STORE_CORRUPT',
      path: file,
      cause: err,
    });
  }
}

/** On an IPv6 network: the IPv6 address that goes with an IPv4 one (the same host part in its subnet). */
export function ipv6Of(record: Pick<NetworkRecord, 'ipv6' | 'subnet' | 'subnet6'>, ip: string): string | undefined {
  if (!record.ipv6 || !record.subnet6) return undefined;
  const v4 = parseCidr(record.subnet);
  return formatIp(6, parseCidr(record.subnet6).base + (parseIp(ip)!.value - v4.base));
}

export class Ipam {
  readonly layout: StoreLayout;
  constructor(layout: StoreLayout) {
    this.layout = layout;
  }

  async #record(networkId: string): Promise<NetworkRecord> {
    const record = await readNetworkRecord(this.layout, networkId);
    if (!record) throw new NotFoundError(`network ${networkId} not found`);
    return record;
  }

  /** The network's allocations, address → container id (a file left empty by a crash reads as ''). */
  async #scan(dir: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return out;
      throw err;
    }
    for (const name of names) {
      if (isTemp(name)) continue;
      try {
        out.set(name, (await readFile(path.join(dir, name), 'utf8')).trim());
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw err;
      }
    }
    return out;
  }

  /** Creates `dir/ip` holding `containerId` if no such file exists; false when it does. */
  async #claim(dir: string, ip: string, containerId: string): Promise<boolean> {
    const tmp = path.join(dir, `.${ip}.tmp-${randomBytes(6).toString('hex')}`);
    await writeFile(tmp, `${containerId}\n`, { flag: 'wx', mode: 0o644 });
    try {
      await link(tmp, path.join(dir, ip));
      return true;
    } catch (err) {
      if (isCode(err, 'EEXIST')) return false;
      throw err;
    } finally {
      await unlink(tmp).catch(reportCleanupError(`removing ${tmp}`));
    }
  }

  #byContainer(networkId: string, containerId: string): string {
    return path.join(path.dirname(this.layout.networkIps(networkId)), 'containers', containerId);
  }

  /** The container's address on the network, when its `containers/` file and the `ips/` file agree. */
  async #mine(networkId: string, containerId: string): Promise<string | undefined> {
    // ENOENT: no address recorded for the container (or the network's directory is gone)
    const ip = ((await readFile(this.#byContainer(networkId, containerId), 'utf8').catch(ignoreCode('ENOENT'))) ?? '').trim();
    if (ip === '' || ip.includes('/')) return undefined;
    // ENOENT: the address was freed (repair) after the container's file was written
    const owner = await readFile(path.join(this.layout.networkIps(networkId), ip), 'utf8').catch(ignoreCode('ENOENT'));
    return owner?.trim() === containerId ? ip : undefined;
  }

  async #remember(networkId: string, containerId: string, ip: string): Promise<void> {
    const file = this.#byContainer(networkId, containerId);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    await writeFile(tmp, `${ip}\n`);
    await rename(tmp, file);
  }

  #result(record: NetworkRecord, ip: string): Allocation {
    const v4 = parseCidr(record.subnet);
    const out: Allocation = { ipAddress: ip, prefixLength: v4.prefix, gateway: record.gateway, macAddress: macForIp(ip) };
    const ipv6Address = ipv6Of(record, ip);
    if (ipv6Address) {
      out.ipv6Address = ipv6Address;
      out.ipv6PrefixLength = parseCidr(record.subnet6!).prefix;
      if (record.gateway6) out.ipv6Gateway = record.gateway6;
    }
    return out;
  }

  /**
   * An address on the network for the container: `requested` if given (an error when taken or not
   * a host of the subnet), else the lowest free one. A container that has one already gets it again.
   */
  async allocate(networkId: string, containerId: string, requested?: string): Promise<Allocation> {
    if (!CONTAINER_ID.test(containerId)) throw new ValidationError(`invalid container id "${containerId}"`, 'containerId');
    return withLock(
      this.layout.networksLock,
      async () => {
        const record = await this.#record(networkId);
        const dir = this.layout.networkIps(networkId);
        await mkdir(dir, { recursive: true });
        const mine = await this.#mine(networkId, containerId);
        if (mine !== undefined && (requested === undefined || requested === mine)) return this.#result(record, mine);
        if (mine !== undefined) {
          throw new NetworkConflictError(`container ${containerId} already has the address ${mine} on network ${record.name}`);
        }
        const subnet = parseCidr(record.subnet);
        const gateway = parseIp(record.gateway)!.value;
        const gateway6 = record.ipv6 && record.subnet6 && record.gateway6 ? parseIp(record.gateway6)!.value - parseCidr(record.subnet6).base : undefined;
        const reserved = (v: bigint) => v === subnet.base || v === gateway || v === lastAddress(subnet) || v - subnet.base === gateway6;
        if (requested !== undefined) {
          const ip = parseIp(requested);
          if (!ip || ip.family !== 4) throw new ValidationError(`invalid IPv4 address "${requested}"`, 'ipv4Address');
          if (!contains(subnet, 4, ip.value) || reserved(ip.value)) {
            throw new ValidationError(`no configured subnet or ip-range contain the IP address ${requested}`, 'ipv4Address');
          }
          const text = formatIp(4, ip.value);
          if (!(await this.#claim(dir, text, containerId))) throw new NetworkConflictError(`Address already in use: ${text} on network ${record.name}`);
          await this.#remember(networkId, containerId, text);
          return this.#result(record, text);
        }
        const used = new Set((await readdir(dir)).filter((n) => !isTemp(n)));
        for (let v = subnet.base + 1n; v < lastAddress(subnet); v++) {
          if (reserved(v)) continue;
          const text = formatIp(4, v);
          if (used.has(text)) continue;
          if (await this.#claim(dir, text, containerId)) {
            await this.#remember(networkId, containerId, text);
            return this.#result(record, text);
          }
        }
        throw new NsboxError(`no available IPv4 addresses on network ${record.name} (${record.subnet})`, { code: 'EADDRNOTAVAIL' });
      },
      { shared: true },
    );
  }

  /** Frees the container's address on the network; false when it had none. */
  async release(networkId: string, containerId: string): Promise<boolean> {
    const dir = this.layout.networkIps(networkId);
    const mine = await this.#mine(networkId, containerId);
    // Without its containers/ file (a crash right after the claim) the address is found by content.
    const ips = mine !== undefined ? [mine] : [...(await this.#scan(dir))].filter(([, owner]) => owner === containerId).map(([ip]) => ip);
    for (const ip of ips) await rm(path.join(dir, ip), { force: true });
    await rm(this.#byContainer(networkId, containerId), { force: true });
    return ips.length > 0;
  }

  /** Who has which address on the network, by address. */
  async endpoints(networkId: string): Promise<Endpoint[]> {
    const dir = this.layout.networkIps(networkId);
    const out: Endpoint[] = [];
    for (const [ipAddress, containerId] of await this.#scan(dir)) if (containerId !== '') out.push({ containerId, ipAddress });
    const key = (ip: string) => parseIp(ip)?.value ?? 0n;
    return out.sort((a, b) => (key(a.ipAddress) < key(b.ipAddress) ? -1 : 1));
  }

  /**
   * After a crash: frees every address whose container is not in `live` (or that a crash left
   * without one), drops temp files, and the allocations of networks that no longer have a record.
   * Run it when no allocation for a container outside `live` is under way (the engine's start-up).
   */
  async repair(live: Iterable<string>): Promise<{ networkId: string; ipAddress: string; containerId: string }[]> {
    const alive = new Set(live);
    const freed: { networkId: string; ipAddress: string; containerId: string }[] = [];
    await withLock(this.layout.networksLock, async () => {
      let names: string[];
      try {
        names = await readdir(this.layout.networksDir);
      } catch (err) {
        if (isCode(err, 'ENOENT')) return;
        throw err;
      }
      for (const networkId of names.filter((n) => /^[0-9a-f]{64}$/.test(n))) {
        const dir = this.layout.networkIps(networkId);
        if (!(await readNetworkRecord(this.layout, networkId))) {
          await rm(path.dirname(dir), { recursive: true, force: true });
          continue;
        }
        // ENOENT: no address was ever taken on this network
        for (const name of (await readdir(dir).catch(ignoreCode('ENOENT'))) ?? []) {
          if (isTemp(name)) await rm(path.join(dir, name), { force: true });
        }
        for (const [ipAddress, containerId] of await this.#scan(dir)) {
          if (alive.has(containerId)) continue;
          await rm(path.join(dir, ipAddress), { force: true });
          freed.push({ networkId, ipAddress, containerId });
        }
        // containers/ files of containers that are gone, or that name an address they do not hold.
        const byContainer = path.join(path.dirname(dir), 'containers');
        // ENOENT: no container's address was ever recorded on this network
        for (const name of (await readdir(byContainer).catch(ignoreCode('ENOENT'))) ?? []) {
          if (isTemp(name) || name.includes('.tmp-') || !alive.has(name) || (await this.#mine(networkId, name)) === undefined) {
            await rm(path.join(byContainer, name), { force: true });
          }
        }
      }
    });
    return freed;
  }
}
