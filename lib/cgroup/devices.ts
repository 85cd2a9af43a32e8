import { stat } from 'node:fs/promises';
import path from 'node:path';
import { NsboxError, ValidationError } from '../errors.js';
import { native } from '../native.js';
import { recordStep, writeValue } from './cgroupfs.js';
import type { CgroupDriver } from './driver.js';
import type { BlkioDevice } from './resources.js';

/** Linux's dev_t encoding (glibc gnu_dev_major / gnu_dev_minor). */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

/** "major:minor" of a blkio device entry, looking up `path` when given. */
export async function deviceNumber(device: BlkioDevice, field: string): Promise<string> {
  if (device.path === undefined) return `${device.major}:${device.minor}`;
  let st;
  try {
    st = await stat(device.path, { bigint: true });
  } catch (err) {
    throw new ValidationError(`blkio device ${device.path}: ${(err as NodeJS.ErrnoException).code ?? err}`, field, err);
  }
  if (!st.isBlockDevice()) throw new ValidationError(`blkio device ${device.path} is not a block device`, field);
  const { major, minor } = splitDev(st.rdev);
  return `${major}:${minor}`;
}

/**
 * One device rule, as runtime-spec's `linux.resources.devices` writes it: `type` a (every device,
 * every access, the default), b or c; `major`/`minor` absent, null or negative for any; `access`
 * some of r, w, m (default rwm).
 */
export interface DeviceRule {
  allow: boolean;
  type?: string | undefined;
  major?: number | null | undefined;
  minor?: number | null | undefined;
  access?: string | undefined;
}

/**
 * The device nodes docker's containers may always make and use (runc's and crun's list too): mknod
 * of any node; null, zero, full, random, urandom, tty, console, ptmx, the pty slaves, tun.
 */
export const DEFAULT_ALLOWED_DEVICES: readonly DeviceRule[] = [
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  ...[[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2], [136, -1], [10, 200]].map(([major, minor]) => ({ allow: true, type: 'c', major: major!, minor: minor!, access: 'rwm' })),
];

/** docker's default device rules: everything denied but DEFAULT_ALLOWED_DEVICES. */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [{ allow: false, type: 'a', access: 'rwm' }, ...DEFAULT_ALLOWED_DEVICES];

/** BPF_DEVCG_DEV_* and BPF_DEVCG_ACC_* (linux/bpf.h). */
const DEV_TYPE: Record<string, number> = { b: 1, c: 2 };
const ACCESS: Record<string, number> = { m: 1, r: 2, w: 4 };
const MAX_RULES = 1000; // cpp/cgroup-bpf.h kMaxDeviceRules
const MAX_NUMBER = 0xfffff; // a minor has 20 bits, a major 12

/**
 * The compact form of `rules` that cpp/cgroup-bpf.cc makes its cgroup-v2 device program of: int32
 * words, the default verdict, then [type, major, minor, access, allow] per rule in match order.
 * The kernel's v1 devices controller is the model: the last rule written that covers a request
 * decides, and a type `a` rule resets everything before it and sets the default (so a list that
 * starts with a deny of `a` denies what it does not allow). Without an `a` rule the default is
 * allow, as a fresh v1 cgroup inherits its parent's (on v2 the parents' programs still apply).
 * An allow rule covers a request whose access it allows whole; a deny rule one that asks for any
 * access it denies. `field` names the list in errors.
 */
export function compileDeviceRules(rules: readonly DeviceRule[], field = 'devices'): Buffer {
  let deflt = true;
  let from = 0;
  const parsed: number[][] = [];
  for (const [i, d] of rules.entries()) {
    const at = `${field}.${i}`;
    const type = d.type ?? 'a';
    if (type !== 'a' && DEV_TYPE[type] === undefined) throw new ValidationError(`${at}.type: ${type} (a, b or c)`, `${at}.type`);
    const access = d.access ?? 'rwm';
    if (!/^[rwm]{1,3}$/.test(access)) throw new ValidationError(`${at}.access: ${access} (r, w, m)`, `${at}.access`);
    const num = (n: number | null | undefined, name: string) => {
      if (n === undefined || n === null || n < 0) return -1;
      if (!Number.isInteger(n) || n > MAX_NUMBER) throw new ValidationError(`${at}.${name}: ${n} is not a device number`, `${at}.${name}`);
      return n;
    };
    const major = num(d.major, 'major');
    const minor = num(d.minor, 'minor');
    if (type === 'a') {
      deflt = d.allow;
      from = i + 1;
      parsed.length = 0;
      continue;
    }
    let bits = 0;
    for (const ch of access) bits |= ACCESS[ch]!;
    parsed.push([DEV_TYPE[type]!, major, minor, bits, d.allow ? 1 : 0]);
  }
  // Rules with the default's verdict that no other rule follows change nothing: left out.
  const order = parsed.reverse();
  while (order.length && order[order.length - 1]![4] === (deflt ? 1 : 0)) order.pop();
  if (order.length > MAX_RULES) throw new ValidationError(`${field}: ${rules.length - from} rules (at most ${MAX_RULES})`, field);
  const out = Buffer.alloc(4 + order.length * 20);
  out.writeInt32LE(deflt ? 1 : 0, 0);
  order.forEach((r, i) => r.forEach((v, k) => out.writeInt32LE(v, 4 + i * 20 + k * 4)));
  return out;
}

/**
 * Makes `program` (compileDeviceRules' output) the device program of the cgroup v2 directory
 * `dir`, in place of the one set before. Recorded like a limit's write (cgroupfs.ts
 * recordingWrites), as [dir, program].
 */
export function setDeviceProgram(dir: string, program: Buffer): void {
  native.setDeviceProgram(dir, program);
  recordStep([dir, program]);
}

/** A rule as cgroup v1's devices.allow / devices.deny take it. */
function v1Line(d: DeviceRule): string {
  const type = d.type ?? 'a';
  if (type === 'a') return 'a';
  const num = (n: number | null | undefined) => (n === undefined || n === null || n < 0 ? '*' : String(n));
  return `${type} ${num(d.major)}:${num(d.minor)} ${d.access ?? 'rwm'}`;
}

/**
 * Enforces `rules` in the cgroup: through v1's devices controller where the cgroup has it
 * (written in order), else as a device program on its cgroup2 directory. A cgroup with neither
 * is an ENOTSUP NsboxError.
 */
export async function applyDeviceRules(driver: CgroupDriver, rules: readonly DeviceRule[], field = 'devices'): Promise<void> {
  const program = compileDeviceRules(rules, field);
  const { devices, unified } = driver.paths;
  if (devices !== undefined) {
    for (const d of rules) await writeValue(path.join(devices, d.allow ? 'devices.allow' : 'devices.deny'), v1Line(d));
  } else if (unified !== undefined) {
    setDeviceProgram(unified, program);
  } else {
    throw new NsboxError(`${field}: device rules need the devices controller (cgroup v1) or a cgroup2 directory`, { code: 'ENOTSUP' });
  }
}
