import path from 'node:path';
import { NsboxError } from '../../errors.js';
import { readOptional, writeValue } from '../cgroupfs.js';
import { deviceNumber } from '../devices.js';
import type { IoStats } from '../driver.js';
import type { ParsedResources } from '../resources.js';

export async function setBlkioV1(dir: string, r: ParsedResources): Promise<void> {
  const weight = r.blkio?.weight;
  if (weight !== undefined) {
    // blkio.weight belonged to CFQ; with BFQ the same scale lives in blkio.bfq.weight.
    const file = [path.join(dir, 'blkio.weight'), path.join(dir, 'blkio.bfq.weight')];
    const found = (await Promise.all(file.map(readOptional))).findIndex((t) => t !== undefined);
    if (found < 0) throw new NsboxError(`blkio weight: neither blkio.weight nor blkio.bfq.weight exists in ${dir} (no CFQ, no BFQ)`, { code: 'ENOTSUP', path: dir });
    await writeValue(file[found]!, weight);
  }
  for (const [i, d] of (r.blkio?.devices ?? []).entries()) {
    const dev = await deviceNumber(d, `blkio.devices.${i}`);
    const limits = [['read_bps_device', d.readBps], ['write_bps_device', d.writeBps], ['read_iops_device', d.readIops], ['write_iops_device', d.writeIops]] as const;
    for (const [file, v] of limits) if (v !== undefined) await writeValue(path.join(dir, `blkio.throttle.${file}`), `${dev} ${v}`);
  }
}

/** Sums "maj:min Read N" / "maj:min Write N" lines over every device. */
function sumReadWrite(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [, op, n] = line.trim().split(/\s+/);
    if (op === 'Read') read += Number(n);
    else if (op === 'Write') write += Number(n);
  }
  return { read, write };
}

export async function blkioStatsV1(dir: string): Promise<IoStats | undefined> {
  // The throttle layer accounts every bio; the bfq files only what bfq scheduled.
  for (const prefix of ['blkio.throttle.', 'blkio.bfq.', 'blkio.']) {
    const [bytes, ops] = await Promise.all([
      readOptional(path.join(dir, `${prefix}io_service_bytes_recursive`)),
      readOptional(path.join(dir, `${prefix}io_serviced_recursive`)),
    ]);
    if (bytes === undefined || ops === undefined) continue;
    const b = sumReadWrite(bytes);
    const o = sumReadWrite(ops);
    return { readBytes: b.read, writeBytes: b.write, readOps: o.read, writeOps: o.write };
  }
  return undefined;
}
