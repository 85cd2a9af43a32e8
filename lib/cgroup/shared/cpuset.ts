import path from 'node:path';
import { writeValue } from '../cgroupfs.js';
import type { ParsedResources } from '../resources.js';

// cpuset.cpus and cpuset.mems have the same names and formats in v1 and v2.

export async function setCpuset(dir: string, r: ParsedResources): Promise<void> {
  if (r.cpuset?.cpus !== undefined) await writeValue(path.join(dir, 'cpuset.cpus'), r.cpuset.cpus.replace(/\s+/g, ''));
  if (r.cpuset?.mems !== undefined) await writeValue(path.join(dir, 'cpuset.mems'), r.cpuset.mems.replace(/\s+/g, ''));
}
