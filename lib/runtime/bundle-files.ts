/** The names of the files in a detached container's bundle (described, with their schemas, in bundle.ts). */
import { join } from 'node:path';

export const BundleFile = {
  plan: 'plan.bin',
  cgroup: 'cgroup.json',
  shimPid: 'shim.pid',
  state: 'state.json',
  exit: 'exit.json',
  log: 'container.log',
  attach: 'attach.sock',
  events: 'events.sock',
  health: 'health.json',
  exec: 'exec.json',
} as const;
export type BundleFileName = keyof typeof BundleFile;

/** The path of one of the bundle's files. */
export const bundlePath = (bundle: string, file: BundleFileName): string => join(bundle, BundleFile[file]);
