/**
 * IPAM: the addresses of a network's containers. Each allocated address is a file,
 * `<root>/networks/<id>/ips/<address>`, holding the container id; it is written to a temp file and
 * hard-linked into place, and link(2) fails when the name exists, so two processes never get the
 * same address and a kill -9 at any point leaves the address either allocated (to a container id
 * that repair checks) or free. `containers/<container id>` names the container's address, so that
 * allocate (again) and release read one file; the `ips/` files stay the truth. No state lives only
 * in memory. The network address, the gateway and the broadcast address are never handed out.
 *
 * On an IPv6 network the container's IPv6 address is claimed the same way, a file in `ips/` named
 * by the address: the one with its IPv4 address's host part, or the one it asked for (docker's
 * `--ip6`). An IPv4 address whose IPv6 twin someone asked for is passed over. `containers/<id>`
 * then has two lines, the IPv4 address and the IPv6 one.
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
  /** On an IPv6 network: the one asked for, else the address with the same host part in its IPv6 subnet. */
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

  /**
   * The container's addresses on the network (IPv4, and IPv6 when one was claimed), when its
   * `containers/` file and the `ips/` file of the IPv4 address agree.
   */
  async #mine(networkId: string, containerId: string): Promise<{ ip: string; ip6?: string } | undefined> {
    // ENOENT: no address recorded for the container (or the network's directory is gone)
    const [ip = '', ip6 = ''] = ((await readFile(this.#byContainer(networkId, containerId), 'utf8').catch(ignoreCode('ENOENT'))) ?? '').trim().split('\n');
    if (ip === '' || ip.includes('/')) return undefined;
    // ENOENT: the address was freed (repair) after the container's file was written
    const owner = await readFile(path.join(this.layout.networkIps(networkId), ip), 'utf8').catch(ignoreCode('ENOENT'));
    return owner?.trim() === containerId ? { ip, ...(ip6 && !ip6.includes('/') ? { ip6 } : {}) } : undefined;
  }

  async #remember(networkId: string, containerId: string, ip: string, ip6?: string): Promise<void> {
    const file = this.#byContainer(networkId, containerId);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    await writeFile(tmp, `${ip}\n${ip6 ? `${ip6}\n` : ''}`);
    await rename(tmp, file);
  }

  /**
   * Claims the container's IPv6 address on an IPv6 network (`requested6`, else `ip`'s twin) and
   * records both; the IPv4 claim is undone when the IPv6 one fails.
   */
  async #claim6(record: NetworkRecord, dir: string, containerId: string, ip: string, requested6: string | undefined): Promise<Allocation> {
    const ip6 = requested6 ?? ipv6Of(record, ip);
    if (ip6 !== undefined && !(await this.#claim(dir, ip6, containerId))) {
      await rm(path.join(dir, ip), { force: true });
      throw new NetworkConflictError(`Address already in use: ${ip6} on network ${record.name}`);
    }
    await this.#remember(record.id, containerId, ip, ip6);
    return this.#result(record, ip, ip6);
  }

  /** `requested6` checked and written the way the files name it: an address of the IPv6 subnet, not its base or gateway. */
  #check6(record: NetworkRecord, requested6: string): string {
    const ip = parseIp(requested6);
    if (!ip || ip.family !== 6) throw new ValidationError(`invalid IPv6 address "${requested6}"`, 'ipv6Address');
    const subnet6 = record.ipv6 && record.subnet6 ? parseCidr(record.subnet6) : undefined;
    const gateway6 = record.gateway6 ? parseIp(record.gateway6)?.value : undefined;
    if (!subnet6 || !contains(subnet6, 6, ip.value) || ip.value === subnet6.base || ip.value === gateway6) {
      throw new ValidationError(`no configured subnet or ip-range contain the IP address ${requested6}`, 'ipv6Address');
    }
    return formatIp(6, ip.value);
  }

  #result(record: NetworkRecord, ip: string, ip6?: string): Allocation {
    const v4 = parseCidr(record.subnet);
    const out: Allocation = { ipAddress: ip, prefixLength: v4.prefix, gateway: record.gateway, macAddress: macForIp(ip) };
    const ipv6Address = record.ipv6 && record.subnet6 ? (ip6 ?? ipv6Of(record, ip)) : undefined;
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
   * `requested6` (IPv6 networks only): its IPv6 address, the same way.
   */
  async allocate(networkId: string, containerId: string, requested?: string, requested6?: string): Promise<Allocation> {
    if (!CONTAINER_ID.test(containerId)) throw new ValidationError(`invalid container id "${containerId}"`, 'containerId');
    return withLock(
      this.layout.networksLock,
      async () => {
        const record = await this.#record(networkId);
        const dir = this.layout.networkIps(networkId);
        await mkdir(dir, { recursive: true });
        const want6 = requested6 === undefined ? undefined : this.#check6(record, requested6);
        const mine = await this.#mine(networkId, containerId);
        if (mine !== undefined && (requested === undefined || requested === mine.ip) && (want6 === undefined || want6 === mine.ip6)) return this.#result(record, mine.ip, mine.ip6);
        if (mine !== undefined) {
          throw new NetworkConflictError(`container ${containerId} already has the address ${mine.ip6 && want6 ? mine.ip6 : mine.ip} on network ${record.name}`);
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
          return this.#claim6(record, dir, containerId, text, want6);
        }
        const used = new Set((await readdir(dir)).filter((n) => !isTemp(n)));
        for (let v = subnet.base + 1n; v < lastAddress(subnet); v++) {
          if (reserved(v)) continue;
          const text = formatIp(4, v);
          if (used.has(text)) continue;
          // its IPv6 twin asked for by another container (--ip6): the next one, unless this one brings its own
          const twin = want6 === undefined ? ipv6Of(record, text) : undefined;
          if (twin !== undefined && used.has(twin)) continue;
          if (await this.#claim(dir, text, containerId)) return this.#claim6(record, dir, containerId, text, want6);
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
    const ips = mine !== undefined ? [mine.ip, ...(mine.ip6 ? [mine.ip6] : [])] : [...(await this.#scan(dir))].filter(([, owner]) => owner === containerId).map(([ip]) => ip);
    for (const ip of ips) await rm(path.join(dir, ip), { force: true });
    await rm(this.#byContainer(networkId, containerId), { force: true });
    return ips.length > 0;
  }

  /** Who has which IPv4 address on the network, by address (an IPv6 claim goes with one of them). */
  async endpoints(networkId: string): Promise<Endpoint[]> {
    const dir = this.layout.networkIps(networkId);
    const out: Endpoint[] = [];
    for (const [ipAddress, containerId] of await this.#scan(dir)) if (containerId !== '' && !ipAddress.includes(':')) out.push({ containerId, ipAddress });
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
