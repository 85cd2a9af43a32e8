// An OCI bundle for crun and runc: `crun spec` (or `runc spec`) output, adjusted to run /bin/true
// on the read-only rootfs with every namespace nsbox isolates by default.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Spec = {
  process: { terminal?: boolean; args: string[] };
  root: { path: string; readonly?: boolean };
  linux: { namespaces: { type: string }[]; cgroupsPath?: string };
  [key: string]: unknown;
};

const namespaces = ['pid', 'mount', 'network', 'ipc', 'uts', 'cgroup'];

/** Runs `<tool> spec` in a scratch dir and returns the adjusted spec. */
export function makeSpec(tool: 'crun' | 'runc', scratch: string, rootfs: string): Spec {
  mkdirSync(scratch, { recursive: true });
  execFileSync(tool, ['spec'], { cwd: scratch, stdio: ['ignore', 'ignore', 'pipe'] });
  const spec = JSON.parse(readFileSync(join(scratch, 'config.json'), 'utf8')) as Spec;
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  spec.root = { path: rootfs, readonly: true };
  for (const type of namespaces) {
    if (!spec.linux.namespaces.some((ns) => ns.type === type)) spec.linux.namespaces.push({ type });
  }
  return spec;
}

/** Writes the bundle's config.json with the given cgroups path (relative: beneath the caller's). */
export function writeBundle(dir: string, spec: Spec, cgroupsPath: string): void {
  mkdirSync(dir, { recursive: true });
  const config = { ...spec, linux: { ...spec.linux, cgroupsPath } };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
}
