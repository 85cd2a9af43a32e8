/**
 * Published ports as users write them, into `PortBinding`s: docker's `-p` forms, `-P` (every
 * EXPOSEd port on a random host port) and the Engine API's `HostConfig.PortBindings`. A bad spec
 * is a `ValidationError` naming the text it could not read; nothing is guessed.
 */
import { isIP } from 'node:net';
import { ValidationError } from '../errors.js';
import { PROTOCOLS, type Protocol } from './protocols.js';
import type { PortBinding } from './schemas.js';

const bad = (message: string, field: string) => new ValidationError(message, field);

function parseProtocol(text: string, spec: string, field: string): Protocol {
  if ((PROTOCOLS as readonly string[]).includes(text)) return text as Protocol;
  throw bad(`invalid proto "${text}" in port spec "${spec}": tcp, udp or sctp`, field);
}

/** A port number or a range `a-b`, as docker's ParsePortRange: digits only, ≤ 65535, start ≤ end. */
function parseRange(text: string, what: string, spec: string, field: string, min: number): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  const start = m ? Number(m[1]) : NaN;
  const end = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || start > 65535 || end > 65535 || start < min || end < start) {
    throw bad(`invalid ${what} "${text}" in port spec "${spec}": a port ${min}..65535 or a range of them`, field);
  }
  return [start, end];
}

function parseHostIp(text: string, spec: string, field: string): string {
  const ip = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (ip !== '' && isIP(ip) === 0) throw bad(`invalid IP address "${text}" in port spec "${spec}"`, field);
  return ip;
}

/** Splits `ip:host:container` the way docker does: the container port is last, the host port before it, the rest the IP. */
function splitParts(rest: string): [string, string, string] {
  const parts = rest.split(':');
  const n = parts.length;
  const container = parts[n - 1]!;
  if (n === 1) return ['', '', container];
  if (n === 2) return ['', parts[0]!, container];
  return [parts.slice(0, n - 2).join(':'), parts[n - 2]!, container];
}

/** docker's `--publish published=8080,target=80,protocol=udp[,mode=host]` form. */
function parseLongSpec(spec: string, field: string): PortBinding[] {
  let target: number | undefined;
  let published: [number, number] = [0, 0];
  let protocol: Protocol = 'tcp';
  let hostIp = '';
  for (const pair of spec.split(',')) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq).trim().toLowerCase();
    const value = pair.slice(eq + 1).trim();
    if (eq < 0) throw bad(`invalid field "${pair}" in port spec "${spec}": must be a key=value pair`, field);
    if (key === 'target') target = parseRange(value, 'containerPort', spec, field, 1)[0];
    else if (key === 'published') published = parseRange(value, 'hostPort', spec, field, 0);
    else if (key === 'protocol') protocol = parseProtocol(value, spec, field);
    else if (key === 'host_ip') hostIp = parseHostIp(value, spec, field);
    else if (key === 'mode') {
      if (value !== 'host' && value !== 'ingress') throw bad(`invalid publish mode "${value}" in port spec "${spec}"`, field);
    } else throw bad(`invalid field key "${key}" in port spec "${spec}"`, field);
  }
  if (target === undefined) throw bad(`missing mandatory field "target" in port spec "${spec}"`, field);
  if (published[0] !== published[1]) throw bad(`a host port range for one container port is not supported: "${spec}"`, field);
  return [{ containerPort: target, protocol, hostIp, hostPort: published[0] }];
}

/**
 * One `-p`/`--publish` value: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`,
 * `8080:80/udp`, `8000-8001:80-81`, `[::1]:8080:80`, or the long `target=80,published=8080`.
 */
export function parsePortSpec(spec: string, field = 'publish'): PortBinding[] {
  if (spec.includes('=')) return parseLongSpec(spec, field);
  const slash = spec.lastIndexOf('/');
  const rest = slash < 0 ? spec : spec.slice(0, slash);
  const protocol = slash < 0 ? 'tcp' : parseProtocol(spec.slice(slash + 1), spec, field);
  const [ipText, hostText, containerText] = splitParts(rest);
  if (containerText === '') throw bad(`no port specified in port spec "${spec}"`, field);
  const hostIp = parseHostIp(ipText, spec, field);
  const [cStart, cEnd] = parseRange(containerText, 'containerPort', spec, field, 1);
  const [hStart, hEnd] = hostText === '' ? [0, 0] : parseRange(hostText, 'hostPort', spec, field, 0);
  if (hostText !== '' && hEnd - hStart !== cEnd - cStart) {
    throw bad(
      cStart === cEnd
        ? `a host port range for one container port is not supported: "${spec}" (give one host port, or none for a random one)`
        : `invalid ranges specified for container and host ports: "${spec}" (${cEnd - cStart + 1} container ports, ${hEnd - hStart + 1} host ports)`,
      field,
    );
  }
  if (hostText !== '' && hStart === 0 && hEnd !== 0) throw bad(`invalid hostPort "${hostText}" in port spec "${spec}"`, field);
  const out: PortBinding[] = [];
  for (let p = cStart; p <= cEnd; p++) {
    out.push({ containerPort: p, protocol, hostIp, hostPort: hStart === 0 ? 0 : hStart + (p - cStart) });
  }
  return out;
}

/** Every `-p` value of a command line, in order. */
export function parsePortSpecs(specs: readonly string[], field = 'publish'): PortBinding[] {
  return specs.flatMap((s) => parsePortSpec(s, field));
}

/** An exposed-port key as docker writes it (`80/tcp`, `53/udp`, `80`: tcp). */
export function parsePortKey(key: string, field = 'ExposedPorts'): { containerPort: number; protocol: Protocol } {
  const slash = key.indexOf('/');
  const num = slash < 0 ? key : key.slice(0, slash);
  const protocol = slash < 0 ? 'tcp' : parseProtocol(key.slice(slash + 1).toLowerCase(), key, field);
  if (!/^\d+$/.test(num) || Number(num) < 1 || Number(num) > 65535) {
    throw bad(`invalid port "${key}": a port 1..65535, optionally with /tcp, /udp or /sctp`, field);
  }
  return { containerPort: Number(num), protocol };
}

export const portKey = (p: { containerPort: number; protocol: string }): string => `${p.containerPort}/${p.protocol}`;

type Exposed = Readonly<Record<string, unknown>> | Iterable<string> | null | undefined;

function exposedKeys(exposed: Exposed): string[] {
  if (!exposed) return [];
  if (typeof (exposed as Iterable<string>)[Symbol.iterator] === 'function') return [...(exposed as Iterable<string>)];
  return Object.keys(exposed);
}

/**
 * `-P` / `PublishAllPorts`: every exposed port (image `ExposedPorts` plus `--expose`) that has no
 * binding yet gets one on a random host port, on every address.
 */
export function publishAllPorts(exposed: Exposed, bindings: readonly PortBinding[] = []): PortBinding[] {
  const bound = new Set(bindings.map(portKey));
  const out = [...bindings];
  for (const key of exposedKeys(exposed)) {
    const p = parsePortKey(key);
    if (bound.has(portKey(p))) continue;
    bound.add(portKey(p));
    out.push({ ...p, hostIp: '', hostPort: 0 });
  }
  return out;
}

/** One entry of docker's `HostConfig.PortBindings` list. */
export interface DockerHostBinding {
  HostIp?: string | null;
  HostPort?: string | null;
}
export type DockerPortBindings = Record<string, readonly DockerHostBinding[] | null | undefined>;

/**
 * docker's `HostConfig.PortBindings` (`{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`): a
 * HostPort of `""` or `"0"` is a random port; a key with no list binds nothing.
 */
export function parseDockerPortBindings(bindings: DockerPortBindings | null | undefined, field = 'HostConfig.PortBindings'): PortBinding[] {
  const out: PortBinding[] = [];
  for (const [key, list] of Object.entries(bindings ?? {})) {
    const p = parsePortKey(key, `${field}.${key}`);
    for (const b of list ?? []) {
      const hostIp = parseHostIp(b.HostIp ?? '', `${key} HostIp ${b.HostIp}`, `${field}.${key}`);
      const text = b.HostPort ?? '';
      let hostPort = 0;
      if (text !== '') {
        const [start, end] = parseRange(text, 'HostPort', `${key} -> ${text}`, `${field}.${key}`, 0);
        if (start !== end) throw bad(`a host port range for one container port is not supported: ${key} -> ${text}`, `${field}.${key}`);
        hostPort = start;
      }
      out.push({ ...p, hostIp, hostPort });
    }
  }
  return out;
}
