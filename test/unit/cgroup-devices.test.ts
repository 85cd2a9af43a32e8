/** Device rules → the compact form of the cgroup-v2 device program (lib/cgroup/devices.ts, cpp/cgroup-bpf.cc). */
import test from 'ava';
import { compileDeviceRules, DEFAULT_DEVICE_RULES, type DeviceRule } from '../../lib/cgroup/devices.js';
import { ValidationError } from '../../lib/errors.js';
import { deviceProgram, type ControllerVersion } from '../../lib/oci/cgroup-files.js';

/** The compact form read back: the default, then [type, major, minor, access, allow] in match order. */
function decode(b: Buffer): { deflt: number; rules: number[][] } {
  const words = Array.from({ length: b.length / 4 }, (_, i) => b.readInt32LE(i * 4));
  const rules: number[][] = [];
  for (let i = 1; i < words.length; i += 5) rules.push(words.slice(i, i + 5));
  return { deflt: words[0]!, rules };
}

/** What the program decides for a request, evaluated as cpp/cgroup-bpf.cc emits it. */
function decide(b: Buffer, type: 'b' | 'c', major: number, minor: number, access: string): boolean {
  const { deflt, rules } = decode(b);
  const t = type === 'b' ? 1 : 2;
  const req = [...access].reduce((m, ch) => m | ({ m: 1, r: 2, w: 4 } as Record<string, number>)[ch]!, 0);
  for (const [rt, rmaj, rmin, racc, allow] of rules) {
    if (rt !== 0 && rt !== t) continue;
    if (allow ? (req & racc!) !== req : (req & racc!) === 0) continue;
    if (rmaj !== -1 && rmaj !== major) continue;
    if (rmin !== -1 && rmin !== minor) continue;
    return allow === 1;
  }
  return deflt === 1;
}

test('docker\'s defaults: deny by default, mknod of anything, the standard nodes and the ptys', (t) => {
  const p = compileDeviceRules(DEFAULT_DEVICE_RULES);
  const { deflt, rules } = decode(p);
  t.is(deflt, 0);
  t.is(rules.length, 12);
  t.deepEqual(rules[0], [2, 10, 200, 7, 1], 'the last rule written is tested first (tun)');
  t.deepEqual(rules.at(-1), [2, -1, -1, 1, 1], 'c *:* m');
  t.true(decide(p, 'c', 1, 3, 'rw'));
  t.true(decide(p, 'c', 136, 7, 'rw'));
  t.true(decide(p, 'b', 7, 0, 'm'), 'mknod of a block device');
  t.false(decide(p, 'b', 7, 0, 'r'), 'but no read of it');
  t.false(decide(p, 'c', 4, 0, 'w'));
});

test('the last rule that covers a request wins; an a rule resets what came before', (t) => {
  const rules: DeviceRule[] = [
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: false },
    { allow: true, type: 'c', major: 1, minor: null, access: 'rw' },
    { allow: false, type: 'c', major: 1, minor: 5, access: 'w' },
  ];
  const p = compileDeviceRules(rules);
  t.is(decode(p).deflt, 0);
  t.is(decode(p).rules.length, 2, 'the rule before the reset is gone');
  t.true(decide(p, 'c', 1, 3, 'rw'));
  t.false(decide(p, 'c', 1, 3, 'm'), 'rw allowed does not cover mknod');
  t.true(decide(p, 'c', 1, 5, 'r'));
  t.false(decide(p, 'c', 1, 5, 'rw'), 'a deny covers a request for any access it names');
  t.false(decide(p, 'b', 1, 3, 'r'));
});

test('without an a rule the default is allow (as a v1 cgroup inherits its parent\'s), and trailing rules with the default\'s verdict are left out', (t) => {
  const p = compileDeviceRules([{ allow: true, type: 'c', major: 1, minor: 3 }, { allow: false, type: 'c', major: 1, minor: 3, access: 'r' }]);
  t.deepEqual(decode(p), { deflt: 1, rules: [[2, 1, 3, 2, 0]] });
  t.false(decide(p, 'c', 1, 3, 'r'));
  t.true(decide(p, 'c', 1, 3, 'w'));
  t.deepEqual(decode(compileDeviceRules([{ allow: true, access: 'rwm' }])), { deflt: 1, rules: [] });
  t.deepEqual(decode(compileDeviceRules([])), { deflt: 1, rules: [] });
});

test('malformed rules are a ValidationError naming the field', (t) => {
  t.throws(() => compileDeviceRules([{ allow: true, type: 'x' }], 'linux.resources.devices'), { instanceOf: ValidationError, message: /linux\.resources\.devices\.0\.type: x/ });
  t.throws(() => compileDeviceRules([{ allow: true, type: 'c', access: 'rx' }]), { message: /devices\.0\.access: rx/ });
  t.throws(() => compileDeviceRules([{ allow: true, type: 'c', major: 1.5 }]), { message: /devices\.0\.major: 1\.5/ });
  t.throws(() => compileDeviceRules(Array.from({ length: 1001 }, (_, i) => ({ allow: i % 2 === 1, type: 'c', major: i }))), { message: /at most 1000/ });
});

test('nsbox-runc: a program where v1 has no devices controller and the cgroup has a cgroup2 directory; the config\'s rules, the defaults, linux.devices', (t) => {
  const v1: ControllerVersion = (c) => (c === 'devices' ? 1 : c === 'unified' ? 2 : undefined);
  const v2: ControllerVersion = (c) => (c === 'unified' || c === 'memory' ? 2 : undefined);
  const devices = [{ allow: false, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'rwm' }];
  t.is(deviceProgram({ devices }, v1), undefined, 'v1 writes them');
  t.is(deviceProgram({ devices: [] }, v2), undefined);
  t.is(deviceProgram({ memory: { limit: 1 } }, v2), undefined);
  t.is(deviceProgram({ devices }, () => undefined), undefined, 'no cgroup2 directory');
  const p = deviceProgram({ devices }, v2, [{ type: 'c', path: '/dev/fuse', major: 10, minor: 229 }])!;
  t.true(decide(p, 'c', 1, 3, 'r'), 'the defaults come after the config\'s rules, as on v1');
  t.true(decide(p, 'c', 10, 229, 'rw'), 'linux.devices');
  t.false(decide(p, 'c', 10, 228, 'r'));
  t.throws(() => deviceProgram({ devices: [{ allow: true, type: 'q' }] }, v2), { message: /invalid config\.json: linux\.resources\.devices\.0\.type: q/ });
});
