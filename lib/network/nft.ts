/**
 * nsbox's nftables tables (`ip nsbox`, and `ip6 nsbox` for IPv6 networks: the same shape with IPv6
 * addresses), each made once, atomically, with everything in it fixed; what
 * changes with networks and containers are elements of its sets and maps, so that a container's
 * published ports are one element add (one libnftables call in the addon, no exec, no rule text
 * per container and no rule output parsed: listings are nft's JSON, read with zod).
 *
 * - `<proto>_any` maps host port → container address . port, for every local address (docker's
 *   HostIp ''); `<proto>_addr` maps host address . port → …, for one host address. DNAT in
 *   prerouting (from outside and from containers: hairpin) and output (from the host itself,
 *   127.0.0.1 included: the bridges have route_localnet).
 * - `nets`: the subnets of non-internal networks, masqueraded on the way out; a DNAT'ed connection
 *   from loopback or from a container is masqueraded onto the bridge too, so the reply comes back
 *   through the host (docker's hairpin and localhost rules).
 * - `bridges`: every nsbox bridge; `internal`: the bridges of internal networks, which forward
 *   nothing in or out.
 * - IPv6 has no route_localnet: a connection to ::1 DNAT'ed out of the host is dropped on its way
 *   back, so `ip6 nsbox` leaves ::1 alone, and the port's held socket on [::] or [::1] answers it
 *   instead (a proxy in the container's shim, docker-proxy's job).
 */
import * as z from 'zod';
import { native } from '../native.js';
import { NsboxError, isCode } from '../errors.js';
import type { Protocol } from './schemas.js';

export const NFT_TABLE = 'nsbox';
const PROTOS: readonly Protocol[] = ['tcp', 'udp', 'sctp'];
export type Family = 'ip' | 'ip6';
const FAMILIES: readonly Family[] = ['ip', 'ip6'];
/** An address's table: IPv6 ones contain a colon. */
export const familyOf = (ip: string): Family => (ip.includes(':') ? 'ip6' : 'ip');

function tableScript(f: Family): string {
  const addr = f === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const t = `${f} ${NFT_TABLE}`;
  const maps = PROTOS.flatMap((p) => [
    `add map ${t} ${p}_any { type inet_service : ${addr} . inet_service; }`,
    `add map ${t} ${p}_addr { type ${addr} . inet_service : ${addr} . inet_service; }`,
  ]);
  const dnat = PROTOS.flatMap((p) => [
    `add rule ${t} ports dnat to ${f} daddr . ${p} dport map @${p}_addr`,
    `add rule ${t} ports dnat to ${p} dport map @${p}_any`,
  ]);
  // ::1 stays on the host (see above); 127.0.0.0/8 is DNAT'ed (the bridges have route_localnet).
  const local = f === 'ip' ? 'fib daddr type local' : 'fib daddr type local ip6 daddr != ::1';
  return [
    `create table ${t}`,
    ...maps,
    `add set ${t} nets { type ${addr}; flags interval; }`,
    `add set ${t} bridges { type ifname; }`,
    `add set ${t} internal { type ifname; }`,
    `add chain ${t} ports`,
    `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${t} output { type nat hook output priority -100; policy accept; }`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} forward { type filter hook forward priority filter; policy accept; }`,
    `add rule ${t} prerouting ${local} jump ports`,
    `add rule ${t} output ${local} jump ports`,
    ...dnat,
    `add rule ${t} postrouting ${f} saddr @nets oifname != @bridges masquerade`,
    ...(f === 'ip' ? [`add rule ${t} postrouting oifname @bridges ip saddr 127.0.0.0/8 masquerade`] : []),
    `add rule ${t} postrouting oifname @bridges ct status dnat ${f} saddr @nets masquerade`,
    `add rule ${t} forward iifname @internal drop`,
    `add rule ${t} forward oifname @internal drop`,
  ].join('\n');
}

const Listing = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

async function tableExists(f: Family): Promise<boolean> {
  const out = Listing.parse(JSON.parse(await native.nft('list tables', true)));
  return out.nftables.some((e) => {
    const t = z.object({ table: z.object({ family: z.string(), name: z.string() }) }).safeParse(e);
    return t.success && t.data.table.family === f && t.data.table.name === NFT_TABLE;
  });
}

const tableReady = new Map<Family, Promise<void>>();

/** Makes the table if it is not there (once per process; another process may race: `create` is atomic). */
export function ensureTable(f: Family = 'ip'): Promise<void> {
  let ready = tableReady.get(f);
  if (!ready) {
    ready = (async () => {
      if (await tableExists(f)) return;
      try {
        await native.nft(tableScript(f));
      } catch (err) {
        if (!(await tableExists(f))) throw err;
      }
    })().catch((err: unknown) => {
      tableReady.delete(f);
      throw err;
    });
    tableReady.set(f, ready);
  }
  return ready;
}

/** A network's bridge and subnet in the subnet's table's sets (idempotent: `add element` of a present one is fine). */
export async function addNetworkElements(bridge: string, subnet: string, internal: boolean): Promise<void> {
  const f = familyOf(subnet);
  await ensureTable(f);
  const cmds = [`add element ${f} ${NFT_TABLE} bridges { "${bridge}" }`];
  if (internal) cmds.push(`add element ${f} ${NFT_TABLE} internal { "${bridge}" }`);
  else cmds.push(`add element ${f} ${NFT_TABLE} nets { ${subnet} }`);
  await native.nft(cmds.join('\n'));
}

export async function removeNetworkElements(bridge: string, subnet: string, internal: boolean): Promise<void> {
  const f = familyOf(subnet);
  if (!(await tableExists(f))) return;
  const cmds = [`delete element ${f} ${NFT_TABLE} bridges { "${bridge}" }`];
  if (internal) cmds.push(`delete element ${f} ${NFT_TABLE} internal { "${bridge}" }`);
  else cmds.push(`delete element ${f} ${NFT_TABLE} nets { ${subnet} }`);
  await deleteEach(cmds);
}

/** One published port as the table holds it. */
export interface PortRule {
  protocol: Protocol;
  /** '' for every local address. */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

const key = (r: PortRule) => (r.hostIp ? `${r.hostIp} . ${r.hostPort}` : `${r.hostPort}`);
const mapOf = (r: PortRule) => `${r.protocol}_${r.hostIp ? 'addr' : 'any'}`;

/** A rule's table: its container address's family (an IPv6 host address only maps to an IPv6 container). */
const tableOf = (r: PortRule) => `${familyOf(r.containerIp)} ${NFT_TABLE}`;

export async function addPortRules(rules: readonly PortRule[]): Promise<void> {
  if (rules.length === 0) return;
  for (const f of new Set(rules.map((r) => familyOf(r.containerIp)))) await ensureTable(f);
  await native.nft(rules.map((r) => `add element ${tableOf(r)} ${mapOf(r)} { ${key(r)} : ${r.containerIp} . ${r.containerPort} }`).join('\n'));
}

export async function removePortRules(rules: readonly PortRule[]): Promise<void> {
  if (rules.length === 0) return;
  await deleteEach(rules.map((r) => `delete element ${tableOf(r)} ${mapOf(r)} { ${key(r)} }`));
}

/**
 * Deletes in one transaction; if it fails (one of them may be gone already), each alone. What is
 * gone already is no failure; the first other failure is thrown once every delete was tried.
 */
async function deleteEach(cmds: string[]): Promise<void> {
  try {
    await native.nft(cmds.join('\n'));
  } catch (err) {
    if (!isCode(err, 'ERR_NFT')) throw err;
    let failed: unknown;
    for (const c of cmds) {
      await native.nft(c).catch((e: unknown) => {
        if (!isGone(e)) failed ??= e;
      });
    }
    if (failed !== undefined) throw failed;
  }
}

/** An element, map or table that is not there: libnftables says so only in words (the kernel's ENOENT). */
const isGone = (e: unknown) => isCode(e, 'ERR_NFT') && /: No such file or directory\n/.test((e as Error).message);

const Elem = z.object({ map: z.object({ key: z.unknown(), data: z.unknown() }) });
const MapListing = z.object({ map: z.object({ name: z.string(), elem: z.array(z.unknown()).optional() }) });

/** Every port rule in the table (for repair: the ones whose container address is not live go). */
export async function listPortRules(): Promise<PortRule[]> {
  const out: PortRule[] = [];
  for (const f of FAMILIES) if (await tableExists(f)) out.push(...(await listFamily(f)));
  return out;
}

async function listFamily(f: Family): Promise<PortRule[]> {
  const out: PortRule[] = [];
  for (const protocol of PROTOS) {
    for (const kind of ['any', 'addr'] as const) {
      const listing = Listing.parse(JSON.parse(await native.nft(`list map ${f} ${NFT_TABLE} ${protocol}_${kind}`, true)));
      for (const entry of listing.nftables) {
        const m = MapListing.safeParse(entry);
        if (!m.success) continue;
        for (const e of m.data.map.elem ?? []) {
          // An element is [key, data]; a concatenation is { concat: [a, b] }.
          const pair = z.tuple([z.unknown(), z.unknown()]).safeParse(e);
          if (!pair.success) {
            if (Elem.safeParse(e).success) continue;
            throw new NsboxError(`nft: unexpected element in ${protocol}_${kind}`, { code: 'ERR_NFT' });
          }
          const concat = z.object({ concat: z.tuple([z.string(), z.number()]) });
          const data = concat.parse(pair.data[1]).concat;
          const k = kind === 'any' ? { hostIp: '', hostPort: z.number().parse(pair.data[0]) } : (() => {
            const c = concat.parse(pair.data[0]).concat;
            return { hostIp: c[0], hostPort: c[1] };
          })();
          out.push({ protocol, ...k, containerIp: data[0], containerPort: data[1] });
        }
      }
    }
  }
  return out;
}
