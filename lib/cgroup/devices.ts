import { stat } from 'node:fs/promises';
import { ValidationError } from '../errors.js';
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
