// crun (1.x) refuses a hybrid cgroup host whose cgroup2 mount has any controller ("cgroups in
// hybrid mode not supported"), and its cgroupfs manager takes every cgroupsPath from a
// hierarchy's root, which would put its cgroups outside our own (e.g. beside /process_api/<id> in
// the memory hierarchy). Both are fixed for crun alone, without touching the host: a helper
// process holds a private mount namespace in which the cgroup2 mount is gone and our own cgroup
// is bind-mounted over each hierarchy's root, and crun is started inside it by setns-exec.c
// (compiled on the fly; nsenter when there is no C compiler). The helper reads its stdin until
// EOF, so it ends with the benchmark however that ends.
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { CgroupLayout } from './cgroup-hierarchies.ts';
import type { Command } from './spawn-timer.ts';

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The shell steps the namespace needs on this host; empty when crun can run as it is. */
export function mountNamespaceSteps(layout: CgroupLayout): string[] {
  const steps: string[] = [];
  for (const h of layout.hierarchies) {
    if (layout.legacyRoot && h.version === 2) {
      const controllers = readFileSync(`${h.mountPoint}/cgroup.controllers`, 'utf8').trim();
      if (controllers) steps.push(`umount ${quote(h.mountPoint)}`);
      continue;
    }
    if (h.nested) steps.push(`mount --bind ${quote(h.ownDir)} ${quote(h.mountPoint)}`);
  }
  return steps;
}

/** Builds setns-exec into `dir`; undefined when it cannot be built. */
function buildSetnsExec(dir: string): string | undefined {
  const out = join(dir, 'setns-exec');
  const source = new URL('setns-exec.c', import.meta.url).pathname;
  try {
    execFileSync('cc', ['-O2', '-static', '-o', out, source], { stdio: 'ignore' });
    return out;
  } catch {
    return undefined;
  }
}

export class CrunMountNamespace {
  private constructor(
    private readonly helper: ChildProcessByStdio<Writable, Readable, null>,
    /** setns-exec, or undefined to use nsenter. */
    readonly launcher: string | undefined,
  ) {}

  /** Starts the helper; `workDir` is a scratch dir for the launcher binary. */
  static async start(steps: string[], workDir: string): Promise<CrunMountNamespace> {
    const launcher = buildSetnsExec(workDir);
    const script = ['set -e', ...steps, 'echo ready', 'exec cat >/dev/null'].join('\n');
    const helper = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      helper.once('error', reject);
      helper.once('exit', (code) => reject(new Error(`mount namespace helper exited with ${code}`)));
      helper.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('ready\n')) {
          helper.removeAllListeners('exit');
          resolve();
        }
      });
    });
    return new CrunMountNamespace(helper, launcher);
  }

  /** The command, started inside the namespace (paths in it must be absolute). */
  wrap({ file, args }: Command): Command {
    const ns = `/proc/${this.helper.pid}/ns/mnt`;
    if (this.launcher) return { file: this.launcher, args: [ns, file, ...args] };
    return { file: 'nsenter', args: [`--mount=${ns}`, '--', file, ...args] };
  }

  stop(): void {
    this.helper.stdin.end();
    if (this.helper.exitCode === null && this.helper.pid) this.helper.kill('SIGTERM');
  }
}
