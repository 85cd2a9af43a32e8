import { existsSync } from 'node:fs';
import path from 'node:path';
import { ValidationError } from '../../errors.js';
import { writeValue } from '../cgroupfs.js';
import type { ParsedResources } from '../resources.js';

/**
 * Huge page limits per page size ('2MB', '1GB': the kernel's own names in the file names):
 * v1 `hugetlb.<size>.limit_in_bytes`, v2 `hugetlb.<size>.max`. A size the host has no pool for
 * has no file: refused by name rather than as a missing file.
 */
export async function setHugetlb(dir: string, r: ParsedResources, v2: boolean): Promise<void> {
  for (const [size, limit] of Object.entries(r.hugetlb ?? {})) {
    const file = path.join(dir, `hugetlb.${size}.${v2 ? 'max' : 'limit_in_bytes'}`);
    if (!existsSync(file)) throw new ValidationError(`hugetlb: no ${size} huge pages on this host (${file} does not exist)`, 'hugetlb');
    await writeValue(file, limit < 0 ? (v2 ? 'max' : -1) : limit);
  }
}
