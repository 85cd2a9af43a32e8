import path from 'node:path';
import { NsboxError } from '../../errors.js';
import { parseNestedKeyed, readOptional, writeValue } from '../cgroupfs.js';
import { deviceNumber } from '../devices.js';
import type { IoStats } from '../driver.js';
import type { ParsedResources } from '../resources.js';
import { blkioWeightToIoWeight } from '../units.js';

export async function setIoV2(dir: string, r: ParsedResources): Promise<void> {
  const weight = r.blkio?.weight;
  if (weight !== undefined) {
    // BFQ takes the blkio scale (1..1000) as is; io.weight (1..10000) needs runc's conversion.
    const bfq = path.join(dir, 'io.bfq.weight');
    const iocost = path.join(dir, 'io.weight');
    if ((await readOptional(bfq)) !== undefined) await writeValue(bfq, weight);
    else if ((await readOptional(iocost)) !== undefined) await writeValue(iocost, `default ${blkioWeightToIoWeight(weight)}`);
    else throw new NsboxError(`blkio weight: neither io.bfq.weight nor io.weight exists in ${dir} (no BFQ, no iocost)`, { code: 'ENOTSUP', path: dir });
  }
  for (const [i, d] of (r.blkio?.devices ?? []).entries()) {
    const dev = await deviceNumber(d, `blkio.devices.${i}`);
    const parts = [['rbps', d.readBps], ['wbps', d.writeBps], ['riops', d.readIops], ['wiops', d.writeIops]]
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v === 0 ? 'max' : v}`);
    if (parts.length > 0) await writeValue(path.join(dir, 'io.max'), `${dev} ${parts.join(' ')}`);
  }
}

export async function ioStatsV2(dir: string): Promise<IoStats | undefined> {
  const text = await readOptional(path.join(dir, 'io.stat'));
  if (text === undefined) return undefined;
  const out: IoStats = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
  for (const d of Object.values(parseNestedKeyed(text))) {
    out.readBytes += Number(d.rbytes ?? 0);
    out.writeBytes += Number(d.wbytes ?? 0);
    out.readOps += Number(d.rios ?? 0);
    out.writeOps += Number(d.wios ?? 0);
  }
  return out;
}
