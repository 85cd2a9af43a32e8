/**
 * A container's network sandbox: a network namespace of its own, kept by a bind mount on
 * `<runRoot>/netns/<id>` (as `ip netns add`), so that it outlives the container's processes (a
 * restart keeps its addresses and published ports) and the runtime only joins it by path.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native.js';
import { NsboxError } from '../errors.js';

export const netnsDir = (runRoot: string): string => path.join(runRoot, 'netns');
export const netnsPath = (runRoot: string, id: string): string => path.join(netnsDir(runRoot), id);

/** Creates the namespace (lo up); an existing one (a restart, a repair) is kept. */
export async function createSandbox(runRoot: string, id: string): Promise<string> {
  const p = netnsPath(runRoot, id);
  mkdirSync(netnsDir(runRoot), { recursive: true, mode: 0o755 });
  try {
    await native.netnsCreate(p);
  } catch (err) {
    if (!(err instanceof NsboxError && err.code === 'EEXIST')) throw err;
  }
  return p;
}

/** Removes the namespace: its links go with it. False when there was none. */
export function removeSandbox(sandboxKey: string): boolean {
  return native.netnsDelete(sandboxKey);
}
