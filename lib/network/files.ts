/**
 * The three files docker writes for a container with a network of its own, kept in the container's
 * directory and bound over the image's: /etc/hostname, /etc/hosts (localhost lines, then the
 * container's own address with its hostname, then --add-host entries) and /etc/resolv.conf (on a
 * user network: the network's DNS server at its gateway, docker's embedded-DNS role; otherwise the
 * host's resolvers, loopback ones dropped since they cannot be reached from the container).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isCode } from '../errors.js';
import type { Mount } from '../runtime/options.js';
import type { ExtraHost } from './schemas.js';

export interface NetworkFilesInput {
  /** The container's directory: the files live there. */
  dir: string;
  hostname: string;
  /** The container's address on its primary network (absent: none or host mode). */
  ipAddress?: string;
  /** Its IPv6 address there, on an IPv6 network. */
  ipv6Address?: string;
  aliases?: readonly string[];
  extraHosts: readonly ExtraHost[];
  /** The user network's DNS server (its gateway), or undefined for the host's resolvers. */
  nameserver?: string;
  dns: readonly string[];
  dnsSearch: readonly string[];
  dnsOptions: readonly string[];
  /** The host's resolv.conf (injected for tests). */
  hostResolvConf?: string;
}

const GOOGLE = ['8.8.8.8', '8.8.4.4'];

export function resolvConf(i: NetworkFilesInput): string {
  let host = '';
  try {
    host = i.hostResolvConf ?? readFileSync('/etc/resolv.conf', 'utf8');
  } catch (err) {
    // ENOENT: no resolv.conf on the host, docker's fallback servers below
    if (!isCode(err, 'ENOENT')) throw err;
  }
  const lines = host.split('\n').map((l) => l.trim());
  const word = (l: string, k: string) => (l.startsWith(`${k} `) || l.startsWith(`${k}\t`) ? l.slice(k.length).trim() : undefined);
  const hostServers = lines.map((l) => word(l, 'nameserver')).filter((s): s is string => !!s && !s.startsWith('127.') && s !== '::1');
  const search = i.dnsSearch.length ? [...i.dnsSearch] : lines.map((l) => word(l, 'search')).filter((s): s is string => !!s).flatMap((s) => s.split(/\s+/));
  const options = i.dnsOptions.length ? [...i.dnsOptions] : lines.map((l) => word(l, 'options')).filter((s): s is string => !!s).flatMap((s) => s.split(/\s+/));
  const servers = i.nameserver ? [i.nameserver] : i.dns.length ? [...i.dns] : hostServers.length ? hostServers : GOOGLE;
  const out = servers.map((s) => `nameserver ${s}`);
  if (search.length) out.push(`search ${search.join(' ')}`);
  if (options.length) out.push(`options ${options.join(' ')}`);
  return out.join('\n') + '\n';
}

export function hostsFile(i: NetworkFilesInput): string {
  const out = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  for (const h of i.extraHosts) out.push(`${h.ip}\t${h.host}`);
  const names = [i.hostname, ...(i.aliases ?? []).filter((a) => a !== i.hostname)].join(' ');
  if (i.ipAddress) out.push(`${i.ipAddress}\t${names}`);
  if (i.ipv6Address) out.push(`${i.ipv6Address}\t${names}`);
  return out.join('\n') + '\n';
}

/** Writes the files and returns the bind mounts that put them in place. */
export function writeNetworkFiles(i: NetworkFilesInput): Mount[] {
  const files: Array<[string, string]> = [
    ['hostname', `${i.hostname}\n`],
    ['hosts', hostsFile(i)],
    ['resolv.conf', resolvConf(i)],
  ];
  return files.map(([name, text]) => {
    const source = path.join(i.dir, name);
    writeFileSync(source, text, { mode: 0o644 });
    return { type: 'bind', source, target: `/etc/${name}`, readonly: false, recursive: false } as const;
  });
}
