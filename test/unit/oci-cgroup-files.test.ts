/** linux.resources → the cgroup file writes lib/cgroup's drivers do not make (lib/oci/cgroup-files.ts). */
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { cgroupWrites, type ControllerVersion } from '../../lib/oci/cgroup-files.js';

const v1: ControllerVersion = (c) => (['cpu', 'memory', 'devices', 'net_cls', 'net_prio'].includes(c) ? 1 : undefined);
const v2: ControllerVersion = (c) => (['cpu', 'memory', 'unified'].includes(c) ? 2 : undefined);
const lines = (w: ReturnType<typeof cgroupWrites>) => w.map((x) => `${x.controller}/${x.file}=${x.value}`);

test('cpu: period and quota as given (v1: period first; v2: cpu.max, 100000 and max by default); realtime on v1 only', (t) => {
  t.deepEqual(lines(cgroupWrites({ cpu: { quota: 50000, period: 500000, realtimePeriod: 1000000, realtimeRuntime: 950000 } }, v1)), [
    'cpu/cpu.cfs_period_us=500000', 'cpu/cpu.cfs_quota_us=50000', 'cpu/cpu.rt_period_us=1000000', 'cpu/cpu.rt_runtime_us=950000',
  ]);
  t.deepEqual(lines(cgroupWrites({ cpu: { quota: -1 } }, v1)), ['cpu/cpu.cfs_quota_us=-1']);
  t.deepEqual(lines(cgroupWrites({ cpu: { quota: 50000, realtimeRuntime: 5 } }, v2)), ['cpu/cpu.max=50000 100000']);
  t.deepEqual(lines(cgroupWrites({ cpu: { period: 200000, idle: 1 } }, v2)), ['cpu/cpu.max=max 200000', 'cpu/cpu.idle=1']);
  t.deepEqual(cgroupWrites({ cpu: { shares: 1024, cpus: '0' } }, v1), [], 'shares and cpuset are the driver\'s');
});

test('memory: reservation, kernel, kernelTCP, swappiness, disableOOMKiller on v1; reservation as memory.low on v2', (t) => {
  const m = { reservation: 1 << 20, kernel: 2 << 20, kernelTCP: -1, swappiness: 50, disableOOMKiller: true };
  t.deepEqual(lines(cgroupWrites({ memory: m }, v1)), [
    `memory/memory.soft_limit_in_bytes=${1 << 20}`, `memory/memory.kmem.limit_in_bytes=${2 << 20}`, 'memory/memory.kmem.tcp.limit_in_bytes=-1', 'memory/memory.swappiness=50', 'memory/memory.oom_control=1',
  ]);
  t.deepEqual(lines(cgroupWrites({ memory: m }, v2)), [`memory/memory.low=${1 << 20}`]);
  t.deepEqual(cgroupWrites({ memory: { swappiness: -1, disableOOMKiller: false, limit: 5 } }, v1), [], 'unset values and the limit (the driver\'s) write nothing');
  t.throws(() => cgroupWrites({ memory: { swappiness: 101 } }, v1), { instanceOf: ValidationError, message: /swappiness: 101/ });
  t.throws(() => cgroupWrites({ memory: { reservation: 1 } }, () => undefined), { instanceOf: ValidationError, message: /linux\.resources\.memory: the memory cgroup controller is not mounted/ });
});

test('network: net_cls.classid and one net_prio.ifpriomap line per interface on v1; refused by name when not mounted; nothing on v2', (t) => {
  const network = { classID: 255, priorities: [{ name: 'lo', priority: 10 }, { name: 'eth0', priority: 30 }] };
  t.deepEqual(lines(cgroupWrites({ network }, v1)), ['net_cls/net_cls.classid=255', 'net_prio/net_prio.ifpriomap=lo 10', 'net_prio/net_prio.ifpriomap=eth0 30']);
  const e = t.throws(() => cgroupWrites({ network }, (c) => (c === 'memory' ? 1 : undefined)), { instanceOf: ValidationError });
  t.regex(e.message, /linux\.resources\.network\.classID: the net_cls cgroup controller is not mounted/);
  t.deepEqual(cgroupWrites({ network }, (c) => (c.startsWith('net_') ? 2 : undefined)), []);
  t.throws(() => cgroupWrites({ network: { priorities: [{ name: 'a b', priority: 1 }] } }, v1), { message: /priorities\.0\.name/ });
});

test('devices (v1): the rules in their order, then the defaults and linux.devices; nothing on v2', (t) => {
  const devices = [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }, { allow: true, type: 'b', major: 8, minor: null, access: 'r' }];
  const w = cgroupWrites({ devices }, v1, [{ type: 'c', path: '/dev/fuse', major: 10, minor: 229 }, { type: 'p', path: '/dev/fifo' }]);
  t.deepEqual(lines(w).slice(0, 3), ['devices/devices.deny=a', 'devices/devices.allow=c 10:229 rwm', 'devices/devices.allow=b 8:* r']);
  t.true(lines(w).includes('devices/devices.allow=c 1:3 rwm'), '/dev/null');
  t.true(lines(w).includes('devices/devices.allow=c 136:* rwm'), 'ptys');
  t.is(lines(w).at(-1), 'devices/devices.allow=c 10:229 rwm', 'linux.devices last; a fifo needs no rule');
  t.deepEqual(cgroupWrites({ devices }, v2), []);
  t.throws(() => cgroupWrites({ devices: [{ allow: true, type: 'x' }] }, v1), { message: /devices\.0\.type: x/ });
  t.throws(() => cgroupWrites({ devices: [{ allow: true, type: 'c', access: 'rwx' }] }, v1), { message: /devices\.0\.access/ });
});

test('unified: cgroup v2 files by name; refused on v1 or for a controller not there', (t) => {
  t.deepEqual(lines(cgroupWrites({ unified: { 'memory.high': '1000000', 'cgroup.max.depth': '3' } }, v2)), ['memory/memory.high=1000000', 'unified/cgroup.max.depth=3']);
  t.throws(() => cgroupWrites({ unified: { 'memory.high': '1' } }, v1), { message: /unified\.memory\.high: needs the memory controller on cgroup v2/ });
  t.throws(() => cgroupWrites({ unified: { '../x': '1' } }, v2), { message: /not a cgroup file name/ });
});
