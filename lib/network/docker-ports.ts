/**
 * A container's ports in docker's shapes: the `/containers/json` `Ports` list, inspect's
 * `NetworkSettings.Ports` map and `HostConfig.PortBindings`, the PORTS column of `ps` and the
 * lines of `port`. A binding on every address (`hostIp` '') is shown as docker 28 shows its
 * dual-stack bindings: once on 0.0.0.0 and once on ::.
 */
import { portKey } from './port-spec.js';
import type { BoundPort, PortBinding } from './schemas.js';

/** One entry of `/containers/json`'s `Ports`: exposed only (no IP, no PublicPort) or published. */
export interface DockerPort {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

export interface DockerPortOptions {
  /** Show a binding on every address also on `::` (default true, as docker with IPv6 on the host). */
  ipv6?: boolean;
}

/** Whether a port on every address is held on IPv6 too: the container's primary network has IPv6. */
export const hasIpv6 = (state: { endpoints: ReadonlyArray<{ ipv6Address?: string | undefined }> } | undefined): boolean => state?.endpoints[0]?.ipv6Address !== undefined;

/** The addresses a bound port is reachable on, as docker names them. */
export function hostIpsOf(hostIp: string, opts: DockerPortOptions = {}): string[] {
  if (hostIp !== '') return [hostIp];
  return opts.ipv6 === false ? ['0.0.0.0'] : ['0.0.0.0', '::'];
}

function exposedOnly(exposed: Iterable<string>, ports: readonly BoundPort[]): { containerPort: number; protocol: string }[] {
  const bound = new Set(ports.map(portKey));
  const out: { containerPort: number; protocol: string }[] = [];
  for (const key of exposed) {
    const [num, proto = 'tcp'] = key.split('/');
    const p = { containerPort: Number(num), protocol: proto };
    if (!bound.has(portKey(p)) && Number.isInteger(p.containerPort)) {
      bound.add(portKey(p));
      out.push(p);
    }
  }
  return out;
}

/** `/containers/json` `Ports`: each bound port per address, then each exposed port that is not published. */
export function dockerPortList(ports: readonly BoundPort[], exposed: Iterable<string> = [], opts: DockerPortOptions = {}): DockerPort[] {
  const out: DockerPort[] = [];
  for (const p of ports) {
    for (const ip of hostIpsOf(p.hostIp, opts)) out.push({ IP: ip, PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.protocol });
  }
  for (const p of exposedOnly(exposed, ports)) out.push({ PrivatePort: p.containerPort, Type: p.protocol });
  return out;
}

export type DockerPortMap = Record<string, { HostIp: string; HostPort: string }[] | null>;

/** inspect's `NetworkSettings.Ports`: `{"80/tcp": [{HostIp, HostPort}], "443/tcp": null}` (null: exposed, not published). */
export function dockerPortMap(ports: readonly BoundPort[], exposed: Iterable<string> = [], opts: DockerPortOptions = {}): DockerPortMap {
  const out: DockerPortMap = {};
  for (const p of ports) {
    const list = (out[portKey(p)] ??= []);
    for (const ip of hostIpsOf(p.hostIp, opts)) list.push({ HostIp: ip, HostPort: String(p.hostPort) });
  }
  for (const p of exposedOnly(exposed, ports)) out[portKey(p)] = null;
  return out;
}

/** inspect's `HostConfig.PortBindings`: the bindings as asked for (a random port is HostPort ""). */
export function dockerPortBindings(bindings: readonly PortBinding[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const b of bindings) (out[portKey(b)] ??= []).push({ HostIp: b.hostIp, HostPort: b.hostPort === 0 ? '' : String(b.hostPort) });
  return out;
}

/** `host:port` with brackets around an IPv6 address (Go's net.JoinHostPort). */
export const joinHostPort = (host: string, port: string | number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

function comparePorts(a: DockerPort, b: DockerPort): number {
  if (a.PrivatePort !== b.PrivatePort) return a.PrivatePort - b.PrivatePort;
  const ai = a.IP ?? '';
  const bi = b.IP ?? '';
  if (ai !== bi) return ai < bi ? -1 : 1;
  if ((a.PublicPort ?? 0) !== (b.PublicPort ?? 0)) return (a.PublicPort ?? 0) - (b.PublicPort ?? 0);
  return a.Type < b.Type ? -1 : a.Type > b.Type ? 1 : 0;
}

function formGroup(ip: string, type: string, first: number, last: number): string {
  const group = first === last ? String(first) : `${first}-${last}`;
  return ip === '' ? `${group}/${type}` : `${joinHostPort(ip, group)}->${group}/${type}`;
}

/**
 * The PORTS column of `ps`, grouped the way the docker 28 CLI prints it: ports published on the same
 * number run together (`0.0.0.0:81-82->81-82/tcp`), exposed ones too (`90-91/udp`), then the
 * mappings to another number (`0.0.0.0:8080->80/tcp, [::]:8080->80/tcp`).
 */
export function displayPorts(ports: readonly DockerPort[]): string {
  const sorted = [...ports].sort(comparePorts);
  const groups = new Map<string, { ip: string; type: string; first: number; last: number }>();
  const result: string[] = [];
  const mappings: string[] = [];
  for (const p of sorted) {
    const ip = p.IP ?? '';
    if (ip !== '' && p.PublicPort !== p.PrivatePort) {
      mappings.push(`${joinHostPort(ip, p.PublicPort ?? 0)}->${p.PrivatePort}/${p.Type}`);
      continue;
    }
    const key = `${ip}/${p.Type}`;
    const g = groups.get(key);
    if (!g) {
      groups.set(key, { ip, type: p.Type, first: p.PrivatePort, last: p.PrivatePort });
      continue;
    }
    if (p.PrivatePort === g.last + 1) {
      g.last = p.PrivatePort;
      continue;
    }
    result.push(formGroup(g.ip, g.type, g.first, g.last));
    // docker re-creates the group under the same key, which keeps its first place in the output order.
    g.first = g.last = p.PrivatePort;
  }
  for (const g of groups.values()) result.push(formGroup(g.ip, g.type, g.first, g.last));
  return [...result, ...mappings].join(', ');
}

/**
 * `nsbox port CONTAINER [PORT[/PROTO]]`: `80/tcp -> 0.0.0.0:8080` lines, or for one port only the
 * addresses (`0.0.0.0:8080`).
 */
export function portLines(ports: readonly BoundPort[], only?: { containerPort: number; protocol: string }, opts: DockerPortOptions = {}): string[] {
  const sorted = [...ports].sort((a, b) => a.containerPort - b.containerPort || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
  const lines: string[] = [];
  for (const p of sorted) {
    if (only && (only.containerPort !== p.containerPort || only.protocol !== p.protocol)) continue;
    for (const ip of hostIpsOf(p.hostIp, opts)) {
      const addr = joinHostPort(ip, p.hostPort);
      lines.push(only ? addr : `${portKey(p)} -> ${addr}`);
    }
  }
  return lines;
}
