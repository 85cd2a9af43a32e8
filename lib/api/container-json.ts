/**
 * Containers in docker's JSON: the `/containers/json` summary and the `/containers/{id}/json`
 * inspect document, from an engine record. Only shapes here; every fact comes from the record.
 */
import { parseBytes } from '../cgroup/resources.js';
import { exitCodeOf } from '../engine/container-status.js';
import { containerStatusText, healthOf } from '../engine/health.js';
import { dockerHealthConfig } from '../runtime/health-config.js';
import type { ContainerRecord } from '../engine/records.js';
import { networkModeOf } from '../network/index.js';
import { hostConfigNetworkJson, networkModeText, networkSettingsJson, summaryPorts, type ContainerNetworking } from './network-settings.js';
import type { ContainerOptions } from '../runtime/options.js';

const ZERO_TIME = '0001-01-01T00:00:00Z';

const unix = (iso: string) => Math.floor(Date.parse(iso) / 1000);

function envList(env: ContainerOptions['env']): string[] {
  if (!env) return [];
  return Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

function userText(user: ContainerOptions['user']): string {
  if (user === undefined) return '';
  if (typeof user === 'object') return user.gid === undefined ? String(user.uid) : `${user.uid}:${user.gid}`;
  return String(user);
}

const bytes = (v: number | string | undefined) => (v === undefined || v === -1 ? 0 : parseBytes(v));

/** The record's networking for lib/api/network-settings.ts; its state only while it runs. */
function networking(r: ContainerRecord): ContainerNetworking | undefined {
  if (!r.network) return undefined;
  const running = r.state === 'running' || r.state === 'paused';
  return { id: r.id, options: r.network.options, ...(running && r.network.state ? { state: r.network.state } : {}) };
}

const networkMode = (r: ContainerRecord) => (r.network ? networkModeText(r.network.options) : networkModeOf(r.options.namespaces));

function mountsOf(r: ContainerRecord) {
  const volumeAt = new Map(r.volumes.map((v) => [v.target, v]));
  return (r.options.mounts ?? []).map((m) =>
    m.type === 'bind' && volumeAt.has(m.target)
      ? { Type: 'volume', Name: volumeAt.get(m.target)!.name, Source: m.source, Destination: m.target, Driver: 'local', Mode: m.readonly ? 'ro' : 'z', RW: !m.readonly, Propagation: '' }
      : m.type === 'bind'
      ? { Type: 'bind', Source: m.source, Destination: m.target, Mode: m.readonly ? 'ro' : '', RW: !m.readonly, Propagation: 'rprivate' }
      : { Type: 'tmpfs', Source: '', Destination: m.target, Mode: '', RW: !m.readonly, Propagation: '' },
  );
}

function networks(r: ContainerRecord) {
  const n = networking(r);
  if (n) return networkSettingsJson(n).Networks;
  const mode = networkMode(r);
  return {
    [mode]: {
      IPAMConfig: null, Links: null, Aliases: null, NetworkID: mode, EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0,
      IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: '', DriverOpts: null,
    },
  };
}

const imageName = (r: ContainerRecord) => r.image?.ref ?? r.options.image ?? '';
const commandLine = (r: ContainerRecord) => [...r.entrypoint, ...(r.command.length ? r.command : (r.options.command ?? []))];

/** One entry of `GET /containers/json`. */
export function containerSummary(r: ContainerRecord, now = Date.now()) {
  return {
    Id: r.id,
    Names: [`/${r.name}`],
    Image: imageName(r),
    ImageID: r.image?.digest ?? '',
    Command: commandLine(r).join(' '),
    Created: unix(r.created),
    Ports: networking(r) ? summaryPorts(networking(r)!) : [],
    Labels: r.options.labels ?? {},
    State: r.state,
    Status: containerStatusText(r, now),
    HostConfig: { NetworkMode: networkMode(r) },
    NetworkSettings: { Networks: networks(r) },
    Mounts: mountsOf(r),
  };
}

/** `GET /containers/{id}/json`; `pid` is the init's host pid while it runs. */
export function containerInspect(r: ContainerRecord, pid: number | undefined, logPath: string) {
  const o = r.options;
  const res = o.resources ?? {};
  const [path, ...args] = commandLine(r);
  const tty = o.tty !== undefined && o.tty !== false;
  const health = healthOf(r);
  const healthcheck = dockerHealthConfig(o.healthcheck);
  return {
    Id: r.id,
    Created: r.created,
    Path: path ?? '',
    Args: args,
    State: {
      Status: r.state,
      Running: r.state === 'running' || r.state === 'paused',
      Paused: r.state === 'paused',
      Restarting: false,
      OOMKilled: r.oomKilled,
      Dead: r.state === 'dead',
      Pid: pid ?? 0,
      ExitCode: r.state === 'running' || r.state === 'paused' || r.state === 'created' ? 0 : exitCodeOf(r),
      Error: r.error ?? '',
      StartedAt: r.startedAt ?? ZERO_TIME,
      FinishedAt: r.finishedAt ?? ZERO_TIME,
      ...(health ? { Health: health } : {}),
    },
    Image: r.image?.digest ?? '',
    ResolvConfPath: '',
    HostnamePath: '',
    HostsPath: '',
    LogPath: logPath,
    Name: `/${r.name}`,
    RestartCount: r.restartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      // As the client gave them: host paths and volume names; anonymous volumes are not binds.
      Binds: (o.mounts ?? []).flatMap((m) => {
        if (m.type !== 'bind') return [];
        const v = r.volumes.find((x) => x.target === m.target);
        if (v?.anonymous) return [];
        return [`${v ? v.name : m.source}:${m.target}${m.readonly ? ':ro' : ''}`];
      }),
      NetworkMode: networkMode(r),
      PortBindings: {},
      ...(networking(r) ? hostConfigNetworkJson(networking(r)!) : {}),
      RestartPolicy: { Name: r.restartPolicy.name, MaximumRetryCount: r.restartPolicy.maximumRetryCount ?? 0 },
      AutoRemove: r.autoRemove,
      CapAdd: o.capAdd ?? null,
      CapDrop: o.capDrop ?? null,
      Privileged: o.privileged ?? false,
      ReadonlyRootfs: o.readonlyRootfs ?? false,
      Tmpfs: Object.fromEntries((o.mounts ?? []).filter((m) => m.type === 'tmpfs').map((m) => [m.target, m.size !== undefined ? `size=${m.size}` : ''])),
      Memory: bytes(res.memory),
      MemorySwap: res.memorySwap === -1 ? -1 : bytes(res.memorySwap),
      NanoCpus: Math.round((res.cpus ?? 0) * 1e9),
      CpuShares: res.cpuShares ?? 0,
      PidsLimit: res.pids === -1 ? null : (res.pids ?? null),
      CpusetCpus: res.cpuset?.cpus ?? '',
      CpusetMems: res.cpuset?.mems ?? '',
      ConsoleSize: typeof o.tty === 'object' ? [o.tty.rows, o.tty.cols] : [0, 0],
      LogConfig: { Type: 'json-file', Config: {} },
    },
    GraphDriver: { Name: 'overlay2', Data: null },
    Mounts: mountsOf(r),
    Config: {
      Hostname: o.hostname ?? r.id.slice(0, 12),
      Domainname: '',
      User: userText(o.user),
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: tty,
      OpenStdin: r.openStdin,
      StdinOnce: false,
      Env: envList(o.env),
      Cmd: r.command.length ? r.command : (o.command ?? null),
      Image: imageName(r),
      Volumes: null,
      WorkingDir: o.cwd ?? '',
      Entrypoint: r.entrypoint.length ? r.entrypoint : (o.entrypoint ?? null),
      OnBuild: null,
      Labels: o.labels ?? {},
      ...(o.stopSignal ? { StopSignal: o.stopSignal } : {}),
      ...(healthcheck ? { Healthcheck: healthcheck } : {}),
    },
    NetworkSettings: networking(r) ? networkSettingsJson(networking(r)!) : {
      Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, Ports: {}, SandboxKey: '',
      SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: '', Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', MacAddress: '', Networks: networks(r),
    },
  };
}
