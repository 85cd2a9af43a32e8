import test from 'ava';
import { blkioWeightToIoWeight, cpusToQuota, parseBytes, parseResources, ResourcesSchema, sharesToWeight, weightToShares } from '../../lib/cgroup/index.js';
import { ValidationError } from '../../lib/errors.js';

test('parseBytes takes numbers and binary units', (t) => {
  t.is(parseBytes(0), 0);
  t.is(parseBytes(1048576), 1048576);
  t.is(parseBytes('1048576'), 1048576);
  t.is(parseBytes('512k'), 512 * 1024);
  t.is(parseBytes('256m'), 256 * 2 ** 20);
  t.is(parseBytes('256M'), 256 * 2 ** 20);
  t.is(parseBytes('1g'), 2 ** 30);
  t.is(parseBytes('1GiB'), 2 ** 30);
  t.is(parseBytes('64mb'), 64 * 2 ** 20);
  t.is(parseBytes('1.5g'), 1.5 * 2 ** 30);
  t.is(parseBytes('10b'), 10);
  t.is(parseBytes('2t'), 2 * 2 ** 40);
});

test('parseBytes rejects what is not a size', (t) => {
  for (const bad of ['', 'm', '-1', '1x', '12 34', 'one', '1e3']) t.throws(() => parseBytes(bad), { instanceOf: RangeError }, bad);
  t.throws(() => parseBytes(-5), { instanceOf: RangeError });
  t.throws(() => parseBytes(1.5), { instanceOf: RangeError });
  t.throws(() => parseBytes('99999999p'), { instanceOf: RangeError });
});

test('shares ↔ weight use the runc/crun conversion', (t) => {
  t.is(sharesToWeight(2), 1);
  t.is(sharesToWeight(262144), 10000);
  t.is(sharesToWeight(1024), 39);
  t.is(weightToShares(1), 2);
  t.is(weightToShares(10000), 262144);
  t.is(weightToShares(100), 2598);
  t.is(sharesToWeight(0), 0);
  // Round trips stay within one step of the coarser scale.
  for (let w = 1; w <= 10000; w++) if (sharesToWeight(weightToShares(w)) !== w) t.fail(`weight ${w}`);
  for (const w of [1, 2, 39, 100, 400, 5000, 9999, 10000]) t.is(sharesToWeight(weightToShares(w)), w, `weight ${w}`);
  for (const s of [2, 512, 1024, 2048, 262144]) t.true(Math.abs(weightToShares(sharesToWeight(s)) - s) <= 27, `shares ${s}`);
  // 1:4 stays 1:4.
  t.is(Math.round(weightToShares(400) / weightToShares(100)), 4);
});

test('blkio weight → io.weight and cpus → quota', (t) => {
  t.is(blkioWeightToIoWeight(10), 1);
  t.is(blkioWeightToIoWeight(1000), 10000);
  t.is(blkioWeightToIoWeight(500), 4950);
  t.deepEqual(cpusToQuota(0.5), { quota: 50000, period: 100000 });
  t.deepEqual(cpusToQuota(2), { quota: 200000, period: 100000 });
  t.deepEqual(cpusToQuota(0), { quota: null, period: 100000 });
  t.deepEqual(cpusToQuota(0.001), { quota: 1000, period: 100000 }, 'the kernel minimum quota is 1 ms');
});

test('ResourcesSchema normalises sizes and keeps the rest', (t) => {
  const r = ResourcesSchema.parse({
    memory: '256m',
    memorySwap: '1g',
    cpus: 1.5,
    cpuWeight: 100,
    pids: 64,
    cpuset: { cpus: '0-1,3', mems: '0' },
    blkio: { weight: 500, devices: [{ path: '/dev/sda', readBps: '10m', writeIops: 100 }, { major: 8, minor: 16, writeBps: 1024 }] },
  });
  t.is(r.memory, 256 * 2 ** 20);
  t.is(r.memorySwap, 2 ** 30);
  t.is(r.blkio?.devices?.[0]?.readBps, 10 * 2 ** 20);
  t.deepEqual(ResourcesSchema.parse({ memory: -1, memorySwap: -1, pids: -1 }), { memory: -1, memorySwap: -1, pids: -1 });
  // Parsing the output again gives the same output (the container layer may parse twice).
  t.deepEqual(ResourcesSchema.parse(r), r);
});

test('parseResources names the bad field in a ValidationError', (t) => {
  const cases: Array<[unknown, string]> = [
    [{ memory: '12q' }, 'resources.memory'],
    [{ memory: '64m', memorySwap: '32m' }, 'resources.memorySwap'],
    [{ cpus: -1 }, 'resources.cpus'],
    [{ cpuWeight: 0 }, 'resources.cpuWeight'],
    [{ cpuShares: 1 }, 'resources.cpuShares'],
    [{ pids: 0 }, 'resources.pids'],
    [{ cpuset: { cpus: 'all' } }, 'resources.cpuset.cpus'],
    [{ blkio: { weight: 5 } }, 'resources.blkio.weight'],
    [{ blkio: { devices: [{ readBps: 1 }] } }, 'resources.blkio.devices.0'],
    [{ blkio: { devices: [{ path: '/dev/sda', major: 8, minor: 0 }] } }, 'resources.blkio.devices.0'],
    [{ memroy: '1g' }, 'resources'],
  ];
  for (const [input, field] of cases) {
    const err = t.throws(() => parseResources(input as never), { instanceOf: ValidationError }, JSON.stringify(input));
    t.is(err?.field, field, JSON.stringify(input));
  }
});

test('hugetlb: limits by page size; v1 limit_in_bytes, v2 max (-1 = max); a size without a pool is refused by name', async (t) => {
  const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { setHugetlb } = await import('../../lib/cgroup/shared/hugetlb.js');
  const r = parseResources({ hugetlb: { '2MB': '4m', '1GB': -1 } }, 'resources');
  t.deepEqual(r.hugetlb, { '2MB': 4 << 20, '1GB': -1 });
  t.throws(() => parseResources({ hugetlb: { '2M': 1 } }, 'resources'), { instanceOf: ValidationError, message: /resources\.hugetlb\.2M/ });
  const dir = mkdtempSync(join(tmpdir(), 'hugetlb-'));
  try {
    for (const f of ['hugetlb.2MB.limit_in_bytes', 'hugetlb.1GB.limit_in_bytes', 'hugetlb.2MB.max', 'hugetlb.1GB.max']) writeFileSync(join(dir, f), '');
    await setHugetlb(dir, r, false);
    t.is(readFileSync(join(dir, 'hugetlb.2MB.limit_in_bytes'), 'utf8'), String(4 << 20));
    t.is(readFileSync(join(dir, 'hugetlb.1GB.limit_in_bytes'), 'utf8'), '-1');
    await setHugetlb(dir, r, true);
    t.is(readFileSync(join(dir, 'hugetlb.2MB.max'), 'utf8'), String(4 << 20));
    t.is(readFileSync(join(dir, 'hugetlb.1GB.max'), 'utf8'), 'max');
    await t.throwsAsync(setHugetlb(dir, parseResources({ hugetlb: { '16GB': 1 } }, 'resources'), true), { instanceOf: ValidationError, message: /no 16GB huge pages on this host/ });
  } finally {
    rmSync(dir, { recursive: true });
  }
});
