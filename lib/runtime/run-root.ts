/** Where containers' runtime directories go, and the host's cgroup layout, detected once. */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectCgroups, type CgroupLayout } from '../cgroup/detect.js';

export function defaultRunRoot(): string {
  if (process.env.NSBOX_RUN_ROOT) return process.env.NSBOX_RUN_ROOT;
  if (process.geteuid?.() === 0) return '/run/nsbox';
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'nsbox');
  return join(tmpdir(), `nsbox-${process.geteuid?.() ?? 0}`);
}

let layout: Promise<CgroupLayout> | undefined;

/** The host's cgroup layout, detected once per process; a failed detection is tried again next time. */
export function cgroupLayout(): Promise<CgroupLayout> {
  if (layout) return layout;
  const detecting = detectCgroups();
  layout = detecting;
  detecting.then(undefined, () => {
    if (layout === detecting) layout = undefined;
  });
  return detecting;
}
