/**
 * The `linux.resources` fields that lib/cgroup's drivers do not take (they take docker-shaped
 * limits), as writes of the cgroup's own files, in order: CFS period and quota exactly as given,
 * realtime, memory reservation, kernel, kernelTCP, swappiness and the OOM killer, net_cls and
 * net_prio, cgroup v1 device rules, `unified`; and the device rules on cgroup v2 as the compact
 * form of an eBPF program (deviceProgram). Pure: which version drives each controller is the
 * caller's answer, so it is unit-tested without cgroups.
 */
import { ValidationError } from '../errors.js';
import { compileDeviceRules, DEFAULT_ALLOWED_DEVICES } from '../cgroup/devices.js';
import type { OciDevice, OciResources } from './config.js';

export interface CgroupWrite {
  /** The controller whose directory holds the file (its v1 hierarchy, or the cgroup2 directory). */
  controller: string;
  file: string;
  value: string;
  /** The config field it comes from, for errors. */
  field: string;
}

/** Where a controller is driven: its v1 hierarchy (1), the cgroup2 directory (2), or nowhere. */
export type ControllerVersion = (controller: string) => 1 | 2 | undefined;

type DeviceRule = NonNullable<OciResources['devices']>[number];

function deviceLine(d: DeviceRule, field: string): string {
  const type = d.type ?? 'a';
  if (!['a', 'b', 'c'].includes(type)) throw new ValidationError(`invalid config.json: ${field}.type: ${type} (a, b or c)`, `${field}.type`);
  const access = d.access ?? 'rwm';
  if (!/^[rwm]{1,3}$/.test(access)) throw new ValidationError(`invalid config.json: ${field}.access: ${access} (r, w, m)`, `${field}.access`);
  if (type === 'a') return 'a';
  const num = (n: number | null | undefined) => (n === undefined || n === null || n < 0 ? '*' : String(n));
  return `${type} ${num(d.major)}:${num(d.minor)} ${access}`;
}

/** The config's device rules in their order, then the defaults and an allow of each `linux.devices` node. */
function deviceRules(rules: DeviceRule[], nodes: OciDevice[]): DeviceRule[] {
  const extra: DeviceRule[] = [...DEFAULT_ALLOWED_DEVICES, ...nodes.filter((n) => n.type === 'c' || n.type === 'b').map((n) => ({ allow: true, type: n.type, major: n.major ?? 0, minor: n.minor ?? 0, access: 'rwm' }))];
  return [...rules, ...extra];
}

/** cgroup v1 device rules, written in order (the kernel keeps its allow list in the order written). */
function deviceWrites(rules: DeviceRule[], nodes: OciDevice[]): CgroupWrite[] {
  return deviceRules(rules, nodes).map((d, i) => {
    const field = i < rules.length ? `linux.resources.devices.${i}` : 'linux.devices';
    return { controller: 'devices', file: d.allow ? 'devices.allow' : 'devices.deny', value: deviceLine(d, field), field };
  });
}

const whole = (v: number, field: string) => {
  if (!Number.isInteger(v)) throw new ValidationError(`invalid config.json: ${field}: ${v} is not a whole number`, field);
  return String(v);
};

/**
 * The writes for `r` (create or update). `devices`: the container's `linux.devices` (allowed
 * after the rules). A controller that is not mounted is refused by name, except the device rules
 * on cgroup v2 (an eBPF program nsbox does not write yet: left out) and the v1-only files, which
 * cgroup v2 has no counterpart of (left out, as runc and crun do).
 */
export function cgroupWrites(r: OciResources | undefined, versionOf: ControllerVersion, devices: OciDevice[] = []): CgroupWrite[] {
  if (!r) return [];
  const out: CgroupWrite[] = [];
  const need = (controller: string, field: string): 1 | 2 => {
    const v = versionOf(controller);
    if (v === undefined) throw new ValidationError(`${field}: the ${controller} cgroup controller is not mounted on this host`, field);
    return v;
  };
  const c = r.cpu;
  if (c && (c.quota !== undefined || c.period !== undefined)) {
    const field = 'linux.resources.cpu';
    if (need('cpu', field) === 1) {
      if (c.period !== undefined && c.period !== 0) out.push({ controller: 'cpu', file: 'cpu.cfs_period_us', value: whole(c.period, `${field}.period`), field: `${field}.period` });
      if (c.quota !== undefined && c.quota !== 0) out.push({ controller: 'cpu', file: 'cpu.cfs_quota_us', value: c.quota < 0 ? '-1' : whole(c.quota, `${field}.quota`), field: `${field}.quota` });
    } else {
      const period = c.period && c.period > 0 ? whole(c.period, `${field}.period`) : '100000';
      const quota = c.quota !== undefined && c.quota > 0 ? whole(c.quota, `${field}.quota`) : 'max';
      out.push({ controller: 'cpu', file: 'cpu.max', value: `${quota} ${period}`, field });
    }
  }
  if (c && (c.realtimePeriod || c.realtimeRuntime) && need('cpu', 'linux.resources.cpu.realtimeRuntime') === 1) {
    // The period first: the runtime must fit in it.
    if (c.realtimePeriod) out.push({ controller: 'cpu', file: 'cpu.rt_period_us', value: whole(c.realtimePeriod, 'linux.resources.cpu.realtimePeriod'), field: 'linux.resources.cpu.realtimePeriod' });
    if (c.realtimeRuntime) out.push({ controller: 'cpu', file: 'cpu.rt_runtime_us', value: whole(c.realtimeRuntime, 'linux.resources.cpu.realtimeRuntime'), field: 'linux.resources.cpu.realtimeRuntime' });
  }
  if (c?.idle !== undefined && need('cpu', 'linux.resources.cpu.idle') === 2) out.push({ controller: 'cpu', file: 'cpu.idle', value: whole(c.idle, 'linux.resources.cpu.idle'), field: 'linux.resources.cpu.idle' });

  const m = r.memory;
  if (m && (m.reservation !== undefined || m.kernel !== undefined || m.kernelTCP !== undefined || (m.swappiness !== undefined && m.swappiness >= 0) || m.disableOOMKiller)) {
    const field = 'linux.resources.memory';
    const v = need('memory', field);
    const bytes = (n: number, f: string) => (n < 0 ? '-1' : whole(n, `${field}.${f}`));
    if (m.reservation !== undefined) {
      out.push(v === 1 ? { controller: 'memory', file: 'memory.soft_limit_in_bytes', value: bytes(m.reservation, 'reservation'), field: `${field}.reservation` } : { controller: 'memory', file: 'memory.low', value: m.reservation < 0 ? 'max' : bytes(m.reservation, 'reservation'), field: `${field}.reservation` });
    }
    if (v === 1) {
      if (m.kernel !== undefined) out.push({ controller: 'memory', file: 'memory.kmem.limit_in_bytes', value: bytes(m.kernel, 'kernel'), field: `${field}.kernel` });
      if (m.kernelTCP !== undefined) out.push({ controller: 'memory', file: 'memory.kmem.tcp.limit_in_bytes', value: bytes(m.kernelTCP, 'kernelTCP'), field: `${field}.kernelTCP` });
      if (m.swappiness !== undefined && m.swappiness >= 0) {
        if (m.swappiness > 100) throw new ValidationError(`invalid config.json: ${field}.swappiness: ${m.swappiness} (0 to 100)`, `${field}.swappiness`);
        out.push({ controller: 'memory', file: 'memory.swappiness', value: whole(m.swappiness, 'swappiness'), field: `${field}.swappiness` });
      }
      if (m.disableOOMKiller) out.push({ controller: 'memory', file: 'memory.oom_control', value: '1', field: `${field}.disableOOMKiller` });
    }
  }

  const n = r.network;
  if (n && (n.classID !== undefined || n.priorities?.length)) {
    const field = 'linux.resources.network';
    if (n.classID !== undefined && need('net_cls', `${field}.classID`) === 1) out.push({ controller: 'net_cls', file: 'net_cls.classid', value: whole(n.classID, `${field}.classID`), field: `${field}.classID` });
    for (const [i, p] of (n.priorities ?? []).entries()) {
      if (need('net_prio', `${field}.priorities`) !== 1) break;
      if (!/^[^\s/]+$/.test(p.name)) throw new ValidationError(`invalid config.json: ${field}.priorities.${i}.name: ${JSON.stringify(p.name)}`, `${field}.priorities.${i}.name`);
      out.push({ controller: 'net_prio', file: 'net_prio.ifpriomap', value: `${p.name} ${whole(p.priority, `${field}.priorities.${i}.priority`)}`, field: `${field}.priorities.${i}` });
    }
  }

  if (r.devices?.length && versionOf('devices') === 1) out.push(...deviceWrites(r.devices, devices));

  for (const [key, value] of Object.entries(r.unified ?? {})) {
    const field = `linux.resources.unified.${key}`;
    const dot = key.indexOf('.');
    if (dot <= 0 || key.includes('/')) throw new ValidationError(`invalid config.json: ${field}: not a cgroup file name`, field);
    const controller = key.slice(0, dot);
    // cgroup.* files are the core's, in every cgroup2 directory.
    const v = controller === 'cgroup' ? versionOf('unified') : versionOf(controller);
    if (v !== 2) throw new ValidationError(`${field}: needs the ${controller} controller on cgroup v2`, field);
    out.push({ controller: controller === 'cgroup' ? 'unified' : controller, file: key, value, field });
  }
  return out;
}

/**
 * The device rules of `r` as the compact form of a cgroup-v2 device program (lib/cgroup/devices.ts),
 * when the rules are not v1's to enforce (no v1 devices controller) and the cgroup has a cgroup2
 * directory; undefined otherwise, or when `r` has no device rules. The same rules as v1's, in the
 * same order, so both enforce the same thing.
 */
export function deviceProgram(r: OciResources | undefined, versionOf: ControllerVersion, devices: OciDevice[] = []): Buffer | undefined {
  if (!r?.devices?.length || versionOf('devices') === 1 || versionOf('unified') !== 2) return undefined;
  const rules = deviceRules(r.devices, devices);
  // The same checks and wording as v1's lines.
  rules.forEach((d, i) => deviceLine(d, i < r.devices!.length ? `linux.resources.devices.${i}` : 'linux.devices'));
  return compileDeviceRules(rules, 'linux.resources.devices');
}
